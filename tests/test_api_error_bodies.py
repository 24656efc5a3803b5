"""API error bodies that echo secrets show none of them, with no value known beforehand.

Each client talks to its loopback fake, which answers an injected error in its API's
own shape and quotes what the request was about (the machine config, the env items,
the comment). Nothing is registered with ``redact``: only the structure protects.
"""

from __future__ import annotations

import secrets as pysecrets
from collections.abc import Iterator

import httpx
import pytest

from previewctl import redact
from previewctl.backends.fly.client import FlyClient
from previewctl.backends.fly.settings import auth_header
from previewctl.clients.github import GitHubClient
from previewctl.clients.http import RetryPolicy, build_http_client
from previewctl.clients.vercel import VercelClient
from previewctl.clients.vercel_models import EnvInput
from previewctl.errors import ApiError
from tests.fakes.fly_api import FlyEmulator
from tests.fakes.github_api import GitHubFake
from tests.fakes.vercel_api import VercelFake

APP = "pr-5-svc"


def fast() -> RetryPolicy:
    return RetryPolicy(deadline=2.0, attempts=2, max_wait=0.01, multiplier=0.001)


def secret() -> str:
    return pysecrets.token_urlsafe(18)


@pytest.fixture
def values() -> dict[str, str]:
    """Generated per test; an innocuous name for one, so that no key name gives it away."""
    return {name: secret() for name in ("pg_password", "plain", "meta", "token", "raw")}


def machine_config(v: dict[str, str]) -> dict[str, object]:
    return {
        "containers": [
            {
                "name": "db",
                "image": "postgres:18",
                "cmd": ["serve", f"--grpc-preshared-key={v['token']}"],
                "env": {
                    "POSTGRES_PASSWORD": v["pg_password"],
                    "GREETING": v["plain"],
                    "DATABASE_URL": f"postgresql://app:{v['pg_password']}@localhost/db",
                },
                "files": [{"guest_path": "/etc/app.key", "raw_value": v["raw"]}],
            }
        ],
        "metadata": {"previewctl": "1", "previewctl_secrets": f'{{"x": "{v["meta"]}"}}'},
        "services": [{"protocol": "tcp", "internal_port": 5432}],
    }


@pytest.fixture
def fly(fly_token: str, values: dict[str, str]) -> Iterator[tuple[FlyEmulator, FlyClient]]:
    with FlyEmulator(token=fly_token) as emu:
        emu.add_app(APP)
        emu.add_machine(APP, machine_config(values))
        http = build_http_client(emu.url, {"Authorization": auth_header(fly_token)})
        yield emu, FlyClient(http, retry=fast())


def raw_body(url: str, token: str, method: str, path: str, **kw: object) -> str:
    """What the fake really answers: the values are in it (else these tests prove nothing)."""
    headers = {"Authorization": token}
    return httpx.request(method, url + path, headers=headers, **kw).text  # type: ignore[arg-type]


def assert_none_shown(error: ApiError, values: dict[str, str]) -> None:
    shown = str(error)
    for name, value in values.items():
        assert value not in shown, f"{name} shown in: {shown}"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"/v1/apps/{APP}"),
        ("GET", f"/v1/apps/{APP}/machines"),
        ("DELETE", f"/v1/apps/{APP}"),
    ],
)
def test_fly_error_quoting_the_machine_config_shows_none_of_its_values(
    fly: tuple[FlyEmulator, FlyClient],
    fly_token: str,
    values: dict[str, str],
    method: str,
    path: str,
) -> None:
    emu, client = fly
    emu.inject(method, f"^{path}$", 400, echo=True)
    raw = raw_body(emu.url, auth_header(fly_token), method, path)
    assert all(v in raw for v in values.values()), raw
    emu.inject(method, f"^{path}$", 400, echo=True)
    with pytest.raises(ApiError) as info:
        client.request(method, path)
    assert info.value.api_message.startswith("failed_precondition: machine is in an invalid state")
    assert info.value.code == "failed_precondition"
    assert '"POSTGRES_PASSWORD": "***"' in info.value.api_message  # names kept, values not
    assert_none_shown(info.value, values)


def test_fly_update_quoting_the_request_config_shows_none(
    fly: tuple[FlyEmulator, FlyClient], values: dict[str, str]
) -> None:
    emu, client = fly
    machine_id = next(iter(emu.apps[APP].machines))
    emu.inject("POST", f"/machines/{machine_id}$", 422, echo=True)
    with pytest.raises(ApiError) as info:
        client.update_machine(APP, machine_id, config=machine_config(values))
    assert "config=" in info.value.api_message
    assert_none_shown(info.value, values)


def test_vercel_error_quoting_env_items_shows_only_its_scrubbed_message(
    values: dict[str, str],
) -> None:
    token = secret()
    with VercelFake(token=token) as fake:
        fake.add_project("api", branches=("main", "feat/x"))
        fake.inject("POST", r"^/v10/projects/api/env$", 400, echo=True)
        client = VercelClient(
            build_http_client(fake.url, {"Authorization": f"Bearer {token}"}), retry=fast()
        )
        items = [
            EnvInput(
                key="DATABASE_URL",
                value=f"postgresql://app:{values['pg_password']}@h/db",
                git_branch="feat/x",
            ),
            EnvInput(key="GREETING", value=values["plain"], git_branch="feat/x"),
        ]
        with pytest.raises(ApiError) as info:
            client.upsert_env("api", items)
    message = info.value.api_message
    assert message.startswith("Invalid request: [")
    assert '"key": "***"' in message
    assert '"value": "***"' in message
    assert info.value.code == "bad_request"
    assert_none_shown(info.value, {k: values[k] for k in ("pg_password", "plain")})


def test_github_validation_error_shows_its_message_not_the_input(values: dict[str, str]) -> None:
    token = secret()
    with GitHubFake(token=token, repo="acme/agents") as fake:
        fake.add_pr(5, "feat/x")
        fake.inject("POST", r"/issues/5/comments$", 422, echo=True)
        client = GitHubClient(
            build_http_client(fake.url, {"Authorization": f"Bearer {token}"}), retry=fast()
        )
        with pytest.raises(ApiError) as info:
            client.upsert_sticky_comment("acme/agents", 5, f"body {values['plain']}")
    assert info.value.api_message == "Validation Failed: custom"
    assert_none_shown(info.value, values)


def test_nothing_was_known_beforehand() -> None:
    """These tests run with nothing registered: the known-value redaction is a no-op."""
    assert redact.scrub("anything at all") == "anything at all"
