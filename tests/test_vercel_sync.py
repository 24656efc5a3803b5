from __future__ import annotations

import io
import itertools
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx

from previewctl.actions import GitHubActions
from previewctl.clients.http import RetryPolicy, build_http_client
from previewctl.clients.vercel import VercelClient
from previewctl.clients.vercel_models import EnvVar
from previewctl.errors import ApiError, InputError, NotManagedError, PreviewctlError
from previewctl.reporter import Reporter
from previewctl.vercel_sync import (
    MANAGED_PREFIX,
    fingerprint,
    is_managed,
    managed_comment,
    managed_vars_by_branch,
    remove_branch_env,
    sync_branch_env,
)

BASE = "https://vercel.test"
PROJECT = "web"
BRANCH = "feat/login"


class EnvStore:
    """A project's env vars behind respx routes: enough Vercel to converge against."""

    def __init__(self, router: respx.MockRouter, production_branch: str = "main") -> None:
        self.envs: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self.production_branch = production_branch
        base = f"/v10/projects/{PROJECT}/env"
        router.get(f"/v9/projects/{PROJECT}").mock(side_effect=self._project)
        self.list = router.get(base).mock(side_effect=self._list)
        self.upsert = router.post(base).mock(side_effect=self._upsert)
        self.delete = router.delete(url__regex=rf"{base}/[^/]+$").mock(side_effect=self._delete)

    def add(
        self, key: str, value: str, *, branch: str | None, comment: str = "", **extra: Any
    ) -> dict[str, Any]:
        env = {
            "id": f"env{next(self._ids)}",
            "key": key,
            "value": value,
            "type": "encrypted",
            "target": ["preview"],
            "gitBranch": branch,
            "comment": comment,
            **extra,
        }
        self.envs.append(env)
        return env

    def add_managed(self, key: str, value: str, branch: str) -> dict[str, Any]:
        return self.add(key, value, branch=branch, comment=managed_comment(key, value))

    def values(self, branch: str | None) -> dict[str, str]:
        return {e["key"]: e["value"] for e in self.envs if e["gitBranch"] == branch}

    def leak_all_branches(self) -> None:
        """Make the listing ignore ``gitBranch``: previewctl must filter on its own."""
        self.list.side_effect = lambda request: httpx.Response(
            200, json={"envs": [{**e, "value": "enc"} for e in self.envs]}
        )

    def posted(self) -> list[list[dict[str, Any]]]:
        return [json.loads(call.request.content) for call in self.upsert.calls]

    def _project(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={
                "id": "prj_1",
                "name": PROJECT,
                "link": {"productionBranch": self.production_branch},
            },
        )

    def _list(self, request: httpx.Request) -> httpx.Response:
        branch = request.url.params.get("gitBranch")
        envs = [e for e in self.envs if branch is None or e["gitBranch"] == branch]
        shown = [{**e, "value": "enc:opaque"} for e in envs]  # values never come back
        return httpx.Response(200, json={"envs": shown})

    def _upsert(self, request: httpx.Request) -> httpx.Response:
        assert request.url.params["upsert"] == "true"
        items = json.loads(request.content)
        assert isinstance(items, list)
        for item in items:
            assert item["target"] == ["preview"]
            assert item["gitBranch"]
            current = next(
                (
                    e
                    for e in self.envs
                    if e["key"] == item["key"] and e["gitBranch"] == item["gitBranch"]
                ),
                None,
            )
            if current is None:
                self.add(item["key"], item["value"], branch=item["gitBranch"])
                current = self.envs[-1]
            current.update(value=item["value"], type=item["type"], comment=item.get("comment"))
        return httpx.Response(201, json={"created": items, "failed": []})

    def _delete(self, request: httpx.Request) -> httpx.Response:
        env_id = request.url.path.rsplit("/", 1)[1]
        for env in self.envs:
            if env["id"] == env_id:
                self.envs.remove(env)
                return httpx.Response(200, json=env)
        return httpx.Response(404, json={"error": {"code": "not_found", "message": "gone"}})


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield router


@pytest.fixture
def store(api: respx.MockRouter) -> EnvStore:
    return EnvStore(api)


@pytest.fixture
def client() -> Iterator[VercelClient]:
    with build_http_client(BASE, {"Authorization": "Bearer t"}) as http:
        yield VercelClient(http, retry=RetryPolicy(max_wait=0.01, multiplier=0.001))


@pytest.fixture
def out() -> io.StringIO:
    return io.StringIO()


@pytest.fixture
def reporter(out: io.StringIO) -> Reporter:
    return Reporter(actions=GitHubActions({}), stream=out, verbose=True)


DESIRED = {"DATABASE_URL": "postgresql://app:pw@pr-1.fly.dev/db", "AUTH_SECRET": "s3cr3t-xyz"}


# ---- fingerprints and ownership ----------------------------------------------------------
def test_fingerprint_is_short_stable_and_separates_key_from_value() -> None:
    assert fingerprint("A", "b") == fingerprint("A", "b")
    assert len(fingerprint("A", "b")) == 16
    assert fingerprint("AB", "c") != fingerprint("A", "Bc")
    assert fingerprint("A", "b") != fingerprint("A", "c")
    assert managed_comment("A", "b") == f"previewctl:v1 fp={fingerprint('A', 'b')}"
    assert "value-of-a-secret" not in managed_comment("A", "value-of-a-secret")
    assert managed_comment("A", "b").startswith(MANAGED_PREFIX)


def test_is_managed_needs_our_comment_and_a_branch() -> None:
    ours = EnvVar(id="1", key="A", gitBranch="x", comment="previewctl:v1 fp=abc")
    assert is_managed(ours)
    assert not is_managed(ours.model_copy(update={"comment": None}))
    assert not is_managed(ours.model_copy(update={"comment": "set by hand"}))
    assert not is_managed(ours.model_copy(update={"git_branch": None}))


# ---- sync ------------------------------------------------------------------------------
def test_first_sync_creates_everything_in_one_post(
    store: EnvStore, client: VercelClient, reporter: Reporter
) -> None:
    result = sync_branch_env(client, PROJECT, BRANCH, DESIRED, reporter)
    assert result.created == ["AUTH_SECRET", "DATABASE_URL"]
    assert (result.updated, result.unchanged, result.removed) == ([], [], [])
    assert result.changed
    assert store.upsert.call_count == 1
    (body,) = store.posted()
    assert {item["key"] for item in body} == set(DESIRED)
    for item in body:
        assert item["gitBranch"] == BRANCH
        assert item["target"] == ["preview"]
        assert item["type"] == "encrypted"
        assert item["comment"] == managed_comment(item["key"], DESIRED[item["key"]])
    assert store.values(BRANCH) == DESIRED
    # the branch listing asked Vercel for that branch only
    assert store.list.calls[0].request.url.params["gitBranch"] == BRANCH


def test_second_sync_with_same_values_sends_nothing(
    store: EnvStore, client: VercelClient, reporter: Reporter
) -> None:
    sync_branch_env(client, PROJECT, BRANCH, DESIRED, reporter)
    result = sync_branch_env(client, PROJECT, BRANCH, DESIRED, reporter)
    assert result.unchanged == ["AUTH_SECRET", "DATABASE_URL"]
    assert not result.changed
    assert store.upsert.call_count == 1
    assert not store.delete.called


def test_changed_value_sends_only_that_key(
    store: EnvStore, client: VercelClient, reporter: Reporter
) -> None:
    sync_branch_env(client, PROJECT, BRANCH, DESIRED, reporter)
    changed = {**DESIRED, "AUTH_SECRET": "rotated-value"}
    result = sync_branch_env(client, PROJECT, BRANCH, changed, reporter)
    assert result.updated == ["AUTH_SECRET"]
    assert result.unchanged == ["DATABASE_URL"]
    assert result.changed
    assert store.upsert.call_count == 2
    last = store.posted()[-1]
    assert [item["key"] for item in last] == ["AUTH_SECRET"]
    assert last[0]["value"] == "rotated-value"
    assert store.values(BRANCH) == changed


def test_changed_type_is_rewritten(
    store: EnvStore, client: VercelClient, reporter: Reporter
) -> None:
    sync_branch_env(client, PROJECT, BRANCH, DESIRED, reporter)
    result = sync_branch_env(client, PROJECT, BRANCH, DESIRED, reporter, env_type="sensitive")
    assert result.updated == ["AUTH_SECRET", "DATABASE_URL"]
    assert {item["type"] for item in store.posted()[-1]} == {"sensitive"}


def test_managed_key_no_longer_desired_is_deleted(
    store: EnvStore, client: VercelClient, reporter: Reporter, out: io.StringIO
) -> None:
    sync_branch_env(client, PROJECT, BRANCH, DESIRED, reporter)
    result = sync_branch_env(client, PROJECT, BRANCH, {"AUTH_SECRET": "s3cr3t-xyz"}, reporter)
    assert result.removed == ["DATABASE_URL"]
    assert result.unchanged == ["AUTH_SECRET"]
    assert result.changed
    assert store.upsert.call_count == 1
    assert store.delete.call_count == 1
    assert store.values(BRANCH) == {"AUTH_SECRET": "s3cr3t-xyz"}
    assert "DATABASE_URL removed" in out.getvalue()


def test_what_is_not_ours_survives_a_sync(
    store: EnvStore, client: VercelClient, reporter: Reporter
) -> None:
    other_branch = store.add_managed("OLD_KEY", "x", "feat/other")
    branchless = store.add(
        "OLD_KEY", "generic", branch=None, comment=managed_comment("OLD_KEY", "g")
    )
    unmanaged = store.add("HAND_MADE", "by a human", branch=BRANCH, comment="set by hand")
    production = store.add("OLD_KEY", "prod", branch=None, target=["production"])
    # Vercel's own filter is not trusted: a var of another branch slips into the listing.
    store.leak_all_branches()
    sync_branch_env(client, PROJECT, BRANCH, DESIRED, reporter)
    sync_branch_env(client, PROJECT, BRANCH, {}, reporter)
    ids = {e["id"] for e in store.envs}
    assert {other_branch["id"], branchless["id"], unmanaged["id"], production["id"]} <= ids
    assert store.values(BRANCH) == {"HAND_MADE": "by a human"}


def test_unmanaged_var_with_a_desired_key_is_an_error_before_writing(
    store: EnvStore, client: VercelClient, reporter: Reporter
) -> None:
    store.add_managed("AUTH_SECRET", "old", BRANCH)
    store.add("DATABASE_URL", "hand-set", branch=BRANCH, comment="")
    store.add_managed("STALE", "x", BRANCH)
    with pytest.raises(NotManagedError, match="DATABASE_URL"):
        sync_branch_env(client, PROJECT, BRANCH, DESIRED, reporter)
    assert not store.upsert.called
    assert not store.delete.called


def test_unmanaged_var_on_another_branch_does_not_block(
    store: EnvStore, client: VercelClient, reporter: Reporter
) -> None:
    store.add("DATABASE_URL", "hand-set", branch="feat/other")
    store.add_managed("AUTH_SECRET", DESIRED["AUTH_SECRET"], "feat/other")
    store.leak_all_branches()
    result = sync_branch_env(client, PROJECT, BRANCH, DESIRED, reporter)
    # another branch's var with the same fingerprint does not make ours "unchanged"
    assert result.created == ["AUTH_SECRET", "DATABASE_URL"]
    assert store.values(BRANCH) == DESIRED
    assert store.values("feat/other") == {
        "DATABASE_URL": "hand-set",
        "AUTH_SECRET": DESIRED["AUTH_SECRET"],
    }


def test_production_branch_is_refused(
    store: EnvStore, client: VercelClient, reporter: Reporter
) -> None:
    with pytest.raises(InputError, match="production branch"):
        sync_branch_env(client, PROJECT, "main", DESIRED, reporter)
    assert not store.upsert.called
    assert not store.list.called


@pytest.mark.parametrize("branch", ["", "   "])
def test_empty_branch_is_refused_without_any_call(
    api: respx.MockRouter, client: VercelClient, reporter: Reporter, branch: str
) -> None:
    with pytest.raises(InputError, match="branch"):
        sync_branch_env(client, PROJECT, branch, DESIRED, reporter)
    with pytest.raises(InputError, match="branch"):
        remove_branch_env(client, PROJECT, branch, reporter)
    assert not api.calls


def test_unknown_env_type_is_refused(
    store: EnvStore, client: VercelClient, reporter: Reporter
) -> None:
    with pytest.raises(InputError, match="type"):
        sync_branch_env(client, PROJECT, BRANCH, DESIRED, reporter, env_type="secret")
    assert not store.upsert.called


def test_generic_preview_var_with_a_desired_key_warns(
    store: EnvStore, client: VercelClient, reporter: Reporter, out: io.StringIO
) -> None:
    store.add("DATABASE_URL", "postgresql://prod", branch=None, target=["preview", "production"])
    store.add("AUTH_SECRET", "prod-only", branch=None, target=["production"])
    store.add("UNRELATED", "x", branch=None)
    sync_branch_env(client, PROJECT, BRANCH, DESIRED, reporter)
    log = out.getvalue()
    assert "warning:" in log
    assert "DATABASE_URL" in log
    warning = next(line for line in log.splitlines() if line.startswith("warning:"))
    assert "AUTH_SECRET" not in warning
    assert "UNRELATED" not in warning


def test_no_warning_without_generic_vars(
    store: EnvStore, client: VercelClient, reporter: Reporter, out: io.StringIO
) -> None:
    sync_branch_env(client, PROJECT, BRANCH, DESIRED, reporter)
    assert "warning" not in out.getvalue()


def test_failed_upsert_surfaces_as_api_error(
    store: EnvStore, client: VercelClient, reporter: Reporter
) -> None:
    store.upsert.side_effect = None
    store.upsert.return_value = httpx.Response(
        201,
        json={
            "created": [],
            "failed": [{"error": {"code": "ENV_CONFLICT", "message": "no", "key": "AUTH_SECRET"}}],
        },
    )
    with pytest.raises(ApiError, match="AUTH_SECRET: ENV_CONFLICT"):
        sync_branch_env(client, PROJECT, BRANCH, DESIRED, reporter)
    assert not store.delete.called


# ---- removal -------------------------------------------------------------------------------
def test_remove_branch_env_deletes_only_managed_vars_of_that_branch(
    store: EnvStore, client: VercelClient, reporter: Reporter
) -> None:
    store.add_managed("A", "1", BRANCH)
    store.add_managed("B", "2", BRANCH)
    store.add("C", "3", branch=BRANCH, comment="hand made")
    store.add_managed("A", "1", "feat/other")
    store.add("A", "generic", branch=None, comment=managed_comment("A", "generic"))
    store.leak_all_branches()
    assert remove_branch_env(client, PROJECT, BRANCH, reporter) == ["A", "B"]
    assert store.values(BRANCH) == {"C": "3"}
    assert store.values("feat/other") == {"A": "1"}
    assert store.values(None) == {"A": "generic"}
    # a second run finds nothing of ours: already gone = success
    assert remove_branch_env(client, PROJECT, BRANCH, reporter) == []


def test_managed_vars_by_branch_groups_our_vars(store: EnvStore, client: VercelClient) -> None:
    store.add_managed("A", "1", "b1")
    store.add_managed("B", "1", "b1")
    store.add_managed("A", "1", "b2")
    store.add("A", "x", branch="b3", comment="hand made")
    store.add("A", "x", branch=None, comment=managed_comment("A", "x"))
    grouped = managed_vars_by_branch(client, PROJECT)
    assert {b: sorted(v.key for v in vs) for b, vs in grouped.items()} == {
        "b1": ["A", "B"],
        "b2": ["A"],
    }


# ---- against the stateful fake -------------------------------------------------------------
def test_converges_against_the_vercel_fake(reporter: Reporter) -> None:
    fakes = pytest.importorskip("tests.fakes.vercel_api")
    with fakes.VercelFake(token="tok", team_id="team_1", env_page_size=2) as fake:
        fake.add_project(PROJECT, production_branch="main", branches=(BRANCH, "other"))
        fake.add_env(PROJECT, "DATABASE_URL", "generic", target=["preview"])
        fake.add_env(PROJECT, "KEEP", "x", git_branch="other", comment=managed_comment("KEEP", "x"))
        with build_http_client(fake.url, {"Authorization": "Bearer tok"}) as http:
            client = VercelClient(
                http, team_id="team_1", retry=RetryPolicy(max_wait=0.01, multiplier=0.001)
            )
            many = {**DESIRED, "C": "3", "D": "4"}
            first = sync_branch_env(client, PROJECT, BRANCH, many, reporter)
            assert first.created == sorted(many)
            again = sync_branch_env(client, PROJECT, BRANCH, many, reporter)
            assert not again.changed
            fewer = {"AUTH_SECRET": "new"}
            third = sync_branch_env(client, PROJECT, BRANCH, fewer, reporter)
            assert third.updated == ["AUTH_SECRET"]
            assert third.removed == ["C", "D", "DATABASE_URL"]
            stored = {e["key"]: e["value"] for e in fake.envs_for(PROJECT, BRANCH)}
            assert stored == fewer
            with pytest.raises(PreviewctlError):
                sync_branch_env(client, PROJECT, "main", fewer, reporter)
            assert remove_branch_env(client, PROJECT, BRANCH, reporter) == ["AUTH_SECRET"]
        assert fake.envs_for(PROJECT, BRANCH) == []
        assert [e["key"] for e in fake.envs_for(PROJECT, "other")] == ["KEEP"]
        assert [e["key"] for e in fake.envs_for(PROJECT) if not e.get("gitBranch")] == [
            "DATABASE_URL"
        ]
