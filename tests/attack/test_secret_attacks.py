"""Hostile inputs against "no secret reaches any output", driven through the installed
console script: values previewctl cannot know (it never generated, read or rendered
them) in API answers, health-check output and step output must not reach stdout,
stderr, annotations, $GITHUB_OUTPUT, the step summary, --json or the PR comment."""

from __future__ import annotations

import textwrap
from typing import Any
from urllib.parse import quote

import pytest
from werkzeug.wrappers import Response

from tests.attack.harness import (
    BRANCH,
    PR,
    ActionsStage,
    leaks,
    unknown_secret,
    with_vercel,
)
from tests.fakes.fly_api import FlyEmulator, MachineState
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

APP = f"pr-{PR}-stack"


def _config(stack: Stack, old: str, new: str) -> None:
    path = stack.project.config
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


FAILING_STEP = textwrap.dedent(
    """
    import os, sys
    print("connecting to postgresql://app:" + os.environ["OTHER_PASSWORD"] + "@db:5432/app")
    print("DB_PASS=" + os.environ["OTHER_PASSWORD2"])
    print("error: could not connect", flush=True)
    sys.exit(3)
    """
)


def test_a_failing_steps_output_with_secrets_previewctl_never_saw_stays_out_of_every_output(
    stage: ActionsStage, stack: Stack
) -> None:
    """A migration fails and prints a connection string and a `DB_PASS=` line whose values
    came from the runner's environment, not from previewctl. The runner masks its own
    secrets in the log, but the PR comment and the step summary are not masked by anyone:
    the structure (a URL's password, a key named like a password) must be enough."""
    (stack.project.root / "migrate.py").write_text(FAILING_STEP)
    first, second = unknown_secret(), unknown_secret()
    result = stage.run("up", env={"OTHER_PASSWORD": first, "OTHER_PASSWORD2": second})
    assert result.code == 1, result.output
    assert "failed with exit code 3" in result.stderr
    assert "could not connect" in stage.comments()  # the tail is shown...
    assert leaks(stage.everything(), [first, second]) == []  # ...without the values


def _checks_say(monkeypatch: pytest.MonkeyPatch, output: str) -> None:
    """Every check of every machine stays critical, its output ``output`` (Fly shows an
    HTTP check's response body there, an app's health page can print its config)."""
    real = MachineState._own_checks_json

    def critical(self: MachineState, now: float, state: str) -> list[dict[str, Any]]:
        checks = real(self, now, state)
        for check in checks:
            check.update(status="critical", output=output)
        return checks

    monkeypatch.setattr(MachineState, "_own_checks_json", critical)


def test_a_health_check_output_holding_a_database_url_is_redacted(
    stage: ActionsStage, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fly's answer carries the health check's output; a /healthz that dumps its
    config puts a URL with a password previewctl never saw in it. The timeout error
    names the failing check and its output - without that password."""
    value = unknown_secret()
    _checks_say(monkeypatch, f'{{"ok":false,"db":"postgres://app:{value}@10.0.0.2:5432/app"}}')
    _config(stack, 'machine = "30s"', 'machine = "4s"')
    result = stage.run("up")
    assert result.code == 1, result.output
    assert "check" in result.stderr
    assert "critical" in result.stderr
    assert leaks(stage.everything(), [value]) == []
    status = stage.run("--json", "status", "--pr", str(PR))
    assert leaks(status.output, [value]) == []


def test_a_fly_error_codes_field_is_scrubbed_like_its_message(
    stage: ActionsStage, stack: Stack, fly: FlyEmulator
) -> None:
    """Only the message field is shown, redacted by structure - and the short code next
    to it, which previewctl prints in brackets, was not redacted at all."""
    value = unknown_secret()
    fly.inject(
        "POST",
        r"/machines$",
        422,
        body={"error": "invalid machine config", "status": f"password={value}"},
    )
    result = stage.run("up")
    assert result.code == 1, result.output
    assert "invalid machine config" in result.stderr
    assert leaks(stage.everything(), [value]) == []


def test_plan_masks_env_values_that_are_passwords_by_place_or_by_name(stack: Stack) -> None:
    """`${env.REPLICA_LOGIN}` put in a URL's password is a password whatever its name;
    `${env.DB_PASS}` is one by its name (PASS, not PASSWORD). `plan` (which the workflow
    log and a reviewer see) must print neither, in text or --json."""
    in_url, by_name = unknown_secret(), unknown_secret()
    _config(
        stack,
        "?sslmode=disable",
        '?sslmode=disable", REPLICA_URL = "postgresql://ro:${env.REPLICA_LOGIN}@replica:5432/'
        'app", REPLICA_PASS = "${env.DB_PASS}',
    )
    env = {"REPLICA_LOGIN": in_url, "DB_PASS": by_name}
    text = stack.cli.run("plan", "--pr", str(PR), env=env)
    data = stack.cli.run("--json", "plan", "--pr", str(PR), env=env)
    assert text.code == 0, text.output
    assert data.code == 0, data.output
    assert "REPLICA_URL=" in text.stdout
    assert "REPLICA_PASS=" in text.stdout
    assert leaks(text.output + data.output, [in_url, by_name]) == []


def test_a_200_answer_that_is_not_json_is_an_api_error_not_a_bug(
    stack: Stack, fly: FlyEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proxy or captive portal between the runner and Fly answers 200 with an HTML
    page: that is Fly (or the network) failing, exit 1 with what was wrong - never
    "unexpected error (a bug in previewctl)"."""
    page = "<html>sign in to the wifi</html>"
    as_json = fly.json_response

    def html_page(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Any:
        if data == page:
            return Response(page, status=status, headers=headers, content_type="text/html")
        return as_json(data, status, headers)

    monkeypatch.setattr(fly, "json_response", html_page)
    fly.inject("GET", rf"^/v1/apps/{APP}$", 200, body=page, times=9)
    result = stack.cli.run("up", "--pr", str(PR), "--no-wait")
    assert result.code == 1, result.output
    assert "a bug in previewctl" not in result.stderr
    assert "Fly" in result.stderr


def test_a_200_answer_of_the_wrong_shape_is_an_api_error_not_a_bug(
    stack: Stack, fly: FlyEmulator
) -> None:
    """A 200 whose JSON is not what the API documents (a list for an app, a machine
    without an id) is the API failing: exit 1 naming the call, not a bug report."""
    fly.inject("POST", r"/machines$", 200, body={"state": "created"}, times=9)
    result = stack.cli.run("up", "--pr", str(PR), "--no-wait")
    assert result.code == 1, result.output
    assert "a bug in previewctl" not in result.stderr
    assert "Fly" in result.stderr


def test_an_invalid_api_url_is_bad_input_not_a_bug(stack: Stack) -> None:
    """FLY_API_BASE_URL with a port that is not a number: exit 2 naming the variable,
    not "unexpected error (a bug in previewctl)"."""
    result = stack.cli.run(
        "up", "--pr", str(PR), "--no-wait", env={"FLY_API_BASE_URL": "http://127.0.0.1:flyport"}
    )
    assert result.code == 2, result.output
    assert "a bug in previewctl" not in result.stderr
    assert "FLY_API_BASE_URL" in result.stderr


def _odd_shapes() -> tuple[str, list[str]]:
    """A Fly error message quoting values previewctl never saw, in the shapes Go, shells,
    YAML, HTML and URL-encoding print them; one unknown value per shape."""
    values = [unknown_secret() for _ in range(12)]
    a, b, c, d, e, f, g, h, i, j, k, m = values
    pem = f"-----BEGIN RSA PRIVATE KEY-----\nMIIEow{a}\n-----END RSA PRIVATE KEY-----"
    jwt = f"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.{b}"
    shapes = [
        f'container "db": cmd ["postgres", "--password", "{c}"]',  # an argv list
        f"&{{Cmd:[migrate --db-password {d}] Image:app}}",  # Go's %+v of a struct
        f"config:\n  password:\n    {e}",  # YAML, the value on the next line
        "redirect=" + quote(f"postgres://app:{f}@db:5432/x", safe=""),  # URL-encoded
        f"<Error><Password>{g}</Password></Error>",  # an XML body
        f'{{"opts": {{"creds": "{h}", "session": "{i}"}}}}',  # keys named not quite so
        f'{{"files": [{{raw_value:{j}}}]}}',  # Fly files' content, unquoted
        f'{{"password"=>"{k}"}}',  # a Ruby hash
        f"signing_salt={m}",
        pem,
        jwt,
    ]
    return "invalid machine config: " + "; ".join(shapes), values


def test_api_messages_in_odd_shapes_show_none_of_the_values(stack: Stack, fly: FlyEmulator) -> None:
    """Only the API's message field is shown, after a redaction by structure that does
    not depend on knowing the values: it must know the shapes APIs really print."""
    message, values = _odd_shapes()
    fly.inject("POST", r"/machines$", 422, body={"error": message, "status": "invalid_config"})
    result = stack.cli.run("up", "--pr", str(PR), "--no-wait")
    assert result.code == 1, result.output
    assert "invalid machine config" in result.stderr
    assert leaks(result.output, values) == []


def test_verbose_up_status_resume_down_print_no_secret_and_no_token(
    stage: ActionsStage, stack: Stack
) -> None:
    """The whole life of a preview with `-v` (every API call logged), --json where a
    command has it, in GitHub Actions: the generated secrets and the four tokens appear
    only in ::add-mask:: lines, and the masks come before any other line holding them."""
    vercel = with_vercel(stage)
    up = stage.run("-v", "up")
    assert up.code == 0, up.output
    secret_values = list(stack.secrets(APP).values())
    tokens = [stack.cli.env[n] for n in ("FLY_API_TOKEN", "VERCEL_TOKEN", "GITHUB_TOKEN")]
    assert vercel.envs_for("api", BRANCH), "the Vercel var was not written"
    for args in (
        ("-v", "--json", "status"),
        ("-v", "status", "--pr", str(PR)),
        ("-v", "--json", "up"),
    ):
        assert stage.run(*args).code == 0
    assert stage.run("-v", "--json", "down").code == 0
    assert leaks(stage.everything(), secret_values + tokens) == []
    masks = [line for line in up.stderr.splitlines() if line.startswith("::add-mask::")]
    for value in secret_values:
        assert f"::add-mask::{value}" in masks


def test_an_http_seed_step_with_an_unusable_url_is_a_config_error_not_a_bug(
    stack: Stack,
) -> None:
    """A seed URL with a port that is not a number: exit 2 naming the step's key, never
    "unexpected error (a bug in previewctl)"."""
    config = stack.project.config
    config.write_text(
        config.read_text()
        + '\n[[seed]]\nname = "project"\nhttp = { method = "GET", url = "http://127.0.0.1:apiport/x" }\n'
    )
    assert stack.cli.run("up", "--pr", str(PR)).code == 0
    result = stack.cli.run("seed", "--pr", str(PR))
    assert result.code == 2, result.output
    assert "a bug in previewctl" not in result.stderr
    assert "step project: http.url is not a usable URL" in result.stderr


INJECTING_STEP = textwrap.dedent(
    """
    import sys
    print("::stop-commands::previewctl-is-deaf")
    print("::set-output name=hostname::evil.example.com")
    print("   ::add-mask::", flush=True)
    sys.exit(1)
    """
)
OWN_COMMANDS = ("::add-mask::", "::group::", "::endgroup::", "::error", "::warning", "::notice")


def test_a_steps_output_cannot_issue_workflow_commands_through_previewctl(
    stage: ActionsStage, stack: Stack
) -> None:
    """The runner reads workflow commands from previewctl's stderr, also after leading
    spaces. A step (the PR's code) whose last lines are `::stop-commands::` (after which
    no ::add-mask:: works) or `::set-output` must not get them through the error's
    "last output" block: only previewctl's own commands start a line."""
    (stack.project.root / "migrate.py").write_text(INJECTING_STEP)
    result = stage.run("up")
    assert result.code == 1, result.output
    assert "stop-commands" in result.stderr  # shown, as text
    commands = [line.lstrip() for line in result.stderr.splitlines()]
    injected = [c for c in commands if c.startswith("::") and not c.startswith(OWN_COMMANDS)]
    assert injected == []
    assert not [c for c in commands if c.startswith("::add-mask::") and not c[12:].strip()]


def test_an_unusable_api_url_with_credentials_in_it_is_shown_without_them(stack: Stack) -> None:
    """A base URL that carries a password (a proxy's credentials) and a scheme httpx
    cannot use: the bad-input error quotes the URL, never its password."""
    value = unknown_secret()
    result = stack.cli.run(
        "up", "--pr", str(PR), "--no-wait", env={"FLY_API_BASE_URL": f"ftp://proxy:{value}@h"}
    )
    assert result.code == 2, result.output
    assert "ftp://proxy:***@h" in result.stderr
    assert leaks(result.output, [value]) == []
