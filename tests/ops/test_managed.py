"""The one rule for "managed" (previewctl/managed.py), case by case, as a table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from previewctl.backends.base import Instance
from previewctl.backends.fly.instances import instance_of
from previewctl.backends.fly.models import Machine
from previewctl.config import Config, load_config
from previewctl.errors import NotManagedError
from previewctl.managed import Standing, judge, name_pr, require
from tests.support.project import BASIC_TOML, Project

APP = "pr-5-svc"


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return load_config(Project(tmp_path).write(BASIC_TOML).config)


def machine(
    pr: int | None = 5,
    *,
    marker: bool = True,
    host: str | None = "ok",
    state: str = "started",
    mid: str = "m1",
) -> Instance:
    meta: dict[str, str] = {"previewctl": "1"} if marker else {"owner": "someone"}
    if pr is not None and marker:
        meta["previewctl_pr"] = str(pr)
    raw: dict[str, Any] = {"id": mid, "state": state, "host_status": host}
    if host in (None, "ok"):
        raw["config"] = {"metadata": meta}
    else:  # what Fly sends while the host is in trouble
        raw["incomplete_config"] = {"metadata": meta}
    return instance_of(Machine.model_validate(raw))  # as Fly sends it, as ops see it


CASES: list[tuple[str, str, str | None, list[Instance], Standing, str]] = [
    ("ours", APP, "acme", [machine()], Standing.MANAGED, ""),
    ("two of ours", APP, "acme", [machine(), machine(mid="m2")], Standing.MANAGED, ""),
    (
        "destroyed foreign ignored",
        APP,
        "acme",
        [machine(), machine(marker=False, state="destroyed", mid="m2")],
        Standing.MANAGED,
        "",
    ),
    (
        "name of another PR",
        "pr-6-svc",
        "acme",
        [machine(6)],
        Standing.NOT_MANAGED,
        "not the template's for PR #5",
    ),
    ("look-alike name", "pr-05-svc", "acme", [machine()], Standing.NOT_MANAGED, "template"),
    ("other org", APP, "other", [machine()], Standing.NOT_MANAGED, "organization 'other'"),
    ("org not said", APP, None, [machine()], Standing.UNKNOWN, "which organization"),
    (
        "no marker",
        APP,
        "acme",
        [machine(marker=False)],
        Standing.NOT_MANAGED,
        "carries no previewctl marker",
    ),
    (
        "one foreign among ours",
        APP,
        "acme",
        [machine(), machine(marker=False, mid="m2")],
        Standing.NOT_MANAGED,
        "machine m2 carries no previewctl marker",
    ),
    (
        "marker names another PR",
        APP,
        "acme",
        [machine(7)],
        Standing.NOT_MANAGED,
        "names PR #7, the name PR #5",
    ),
    ("marker names no PR", APP, "acme", [machine(None)], Standing.NOT_MANAGED, "names no PR"),
    (
        "host unreachable",
        APP,
        "acme",
        [machine(host="unreachable")],
        Standing.UNKNOWN,
        "host_status unreachable",
    ),
    (
        "host unknown beside ours",
        APP,
        "acme",
        [machine(), machine(host="unknown", mid="m2")],
        Standing.UNKNOWN,
        "machine m2",
    ),
    # a machine that is definitely foreign decides, whatever the unknown one is
    (
        "foreign beside unknown",
        APP,
        "acme",
        [machine(marker=False), machine(host="unknown", mid="m2")],
        Standing.NOT_MANAGED,
        "carries no previewctl marker",
    ),
    ("empty", APP, "acme", [], Standing.EMPTY, "no machine carries"),
]


@pytest.mark.parametrize(
    ("app", "org", "machines", "standing", "reason"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_the_rule(
    config: Config,
    app: str,
    org: str | None,
    machines: list[Instance],
    standing: Standing,
    reason: str,
) -> None:
    verdict = judge(config, app, org=org, machines=machines, pr=5)
    assert verdict.standing is standing, verdict
    assert reason in verdict.reason
    assert verdict.managed is (standing is Standing.MANAGED)
    assert all(m.state != "destroyed" for m in verdict.machines)
    if verdict.managed:
        assert require(verdict, "down") == verdict.machines
    else:
        with pytest.raises(NotManagedError) as refused:
            require(verdict, "down")
        assert "not managed by previewctl" in refused.value.message
        assert "down changes nothing" in refused.value.message


def test_empty_is_acceptable_only_where_asked(config: Config) -> None:
    verdict = judge(config, APP, org="acme", machines=[], pr=5)
    assert require(verdict, "up", allow_empty=True) == ()
    with pytest.raises(NotManagedError):
        require(verdict, "down")
    unknown = judge(config, APP, org="acme", machines=[machine(host="unreachable")], pr=5)
    with pytest.raises(NotManagedError) as refused:
        require(unknown, "up", allow_empty=True)
    assert "cannot tell" in refused.value.message


def test_without_a_pr_the_name_decides_it(config: Config) -> None:
    assert name_pr(config, "pr-12-svc") == 12
    assert name_pr(config, "pr-012-svc") is None
    assert name_pr(config, "pr-12-svc-old") is None
    verdict = judge(config, "pr-12-svc", org="acme", machines=[machine(12)])
    assert verdict.managed
    assert verdict.pr == 12


@pytest.mark.parametrize(
    ("recorded", "ours", "standing"),
    [
        ("acme/one", "acme/one", Standing.MANAGED),
        ("acme/one", "ACME/One", Standing.MANAGED),  # GitHub's names ignore case
        ("acme/one", "acme/two", Standing.NOT_MANAGED),
        (None, "acme/two", Standing.MANAGED),  # made before the repository was recorded
        ("acme/one", None, Standing.MANAGED),  # a run that does not know its repository
    ],
)
def test_rule_5_the_marker_names_no_other_repository(
    config: Config, recorded: str | None, ours: str | None, standing: Standing
) -> None:
    raw: dict[str, Any] = {"previewctl": "1", "previewctl_pr": "5"}
    if recorded:
        raw["previewctl_repo"] = recorded
    made = instance_of(
        Machine.model_validate({"id": "m1", "state": "started", "config": {"metadata": raw}})
    )
    verdict = judge(config, APP, org="acme", machines=[made], pr=5, repo=ours)
    assert verdict.standing is standing
    if standing is Standing.NOT_MANAGED:
        assert "made for repository 'acme/one', not 'acme/two'" in verdict.reason
