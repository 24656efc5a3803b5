"""The GitHub Actions workflows: every previewctl command line parses with the real CLI,
and the security properties the field report and the reference demand hold.

Nothing here executes previewctl: command lines go through click's parser only.
"""

from __future__ import annotations

import itertools
import re
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.main import get_command

from previewctl.cli.main import app
from tests.support.cli import previewctl_executable

try:  # typer >= 0.2x vendors its own click as typer._click; older typer uses click itself
    from typer._click.exceptions import UsageError
except ImportError:  # pragma: no cover
    from click.exceptions import UsageError  # type: ignore[assignment]

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
ACTION = ROOT / "action.yml"
SHA_PIN = re.compile(r"^[^@\s]+@[0-9a-f]{40}$")
SECRET_ENV = ("FLY_API_TOKEN", "VERCEL_TOKEN", "GITHUB_TOKEN")
# ${env.NAME:-} in previewctl.toml: the LLM key, and the shared SigNoz of the signoz profile
OPTIONAL_SECRET_ENV = ("ANTHROPIC_API_KEY", "SIGNOZ_OTLP_HEADERS_SECRET", "SIGNOZ_API_KEY")
FORK_GUARD = "github.event.pull_request.head.repo.full_name == github.repository"
DEPENDABOT_GUARD = "github.actor != 'dependabot[bot]'"


# ---- loading -------------------------------------------------------------------------------


def _workflow_files() -> list[Path]:
    return sorted([*WORKFLOWS.glob("*.yml"), *WORKFLOWS.glob("*.yaml")])


def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    assert isinstance(data, dict), name
    return data


def triggers(workflow: dict[str, Any]) -> dict[str, Any]:
    """The `on:` mapping (YAML 1.1 reads the bare key `on` as True)."""
    keys: dict[Any, Any] = workflow
    on = keys.get("on", keys.get(True))
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    assert isinstance(on, dict)
    return on


@dataclass(frozen=True)
class Step:
    workflow: str
    job: str
    index: int
    data: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.workflow}:{self.job}:{self.data.get('name') or self.index}"

    @property
    def run(self) -> str | None:
        run = self.data.get("run")
        return run if isinstance(run, str) else None


def all_steps() -> Iterator[Step]:
    """Every step of every workflow, then the composite action's own steps."""
    for path in _workflow_files():
        workflow = yaml.safe_load(path.read_text())
        for job_id, job in (workflow.get("jobs") or {}).items():
            for index, step in enumerate(job.get("steps") or []):
                yield Step(path.name, job_id, index, step)
    action = yaml.safe_load(ACTION.read_text())
    for index, step in enumerate(action["runs"]["steps"]):
        yield Step(ACTION.name, "runs", index, step)


def action_steps() -> list[Step]:
    """The workflow steps that run previewctl through the repository's action."""
    return [s for s in all_steps() if s.data.get("uses") == "./"]


_LITERAL = re.compile(r"'([^']*)'")


def _arg_variants(args: str) -> list[str]:
    """The values an `args:` input can take: itself, or each quoted literal of an
    expression such as `${{ inputs.dry_run && '--dry-run' || '' }}`."""
    if "${{" not in args:
        return [args]
    return _LITERAL.findall(args)


def action_argvs(step: Step) -> list[list[str]]:
    """The argv (after `previewctl`) the action runs for one `uses: ./` step."""
    with_ = step.data.get("with") or {}
    config = with_.get("config", "previewctl.toml")
    return [
        ["--config", config, with_["command"], *args.split()]
        for args in _arg_variants(str(with_.get("args", "")))
    ]


# ---- finding previewctl command lines in run: scripts ----------------------------------------

_ARRAY_EXPANSION = re.compile(r'"\$\{(\w+)\[@\]\}"')
_SEPARATORS = {";", "&&", "||", "|", "&", "(", ")", "\n"}


def _array_variants(script: str, name: str) -> list[list[str]]:
    """Every value a bash array can hold at its expansion: its initial value plus any subset
    of its `+=(...)` appends, in order."""
    initial = re.findall(rf"(?<![\w+]){name}=\(([^)]*)\)", script)
    appends = [shlex.split(group) for group in re.findall(rf"\b{name}\+=\(([^)]*)\)", script)]
    assert initial or appends, f"array {name!r} is expanded but never assigned"
    base = shlex.split(initial[0]) if initial else []
    variants: list[list[str]] = []
    for count in range(len(appends) + 1):
        for chosen in itertools.combinations(appends, count):
            variants.append(base + [arg for group in chosen for arg in group])
    return variants


def _commands(line: str) -> Iterator[list[str]]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    current: list[str] = []
    for token in lexer:
        if token in _SEPARATORS:
            if current:
                yield current
            current = []
        else:
            current.append(token)
    if current:
        yield current


def previewctl_argvs(script: str) -> list[list[str]]:
    """The argv (after `previewctl`) of every previewctl invocation in a bash script, one per
    possible value of the bash arrays it expands."""
    found: list[list[str]] = []
    for line in script.replace("\\\n", " ").splitlines():
        arrays = _ARRAY_EXPANSION.findall(line)
        choices = [_array_variants(script, name) for name in arrays]
        for combo in itertools.product(*choices):
            expanded = line
            for name, values in zip(arrays, combo, strict=True):
                replacement = " ".join(shlex.quote(v) for v in values)
                expanded = expanded.replace(f'"${{{name}[@]}}"', replacement, 1)
            for command in _commands(expanded):
                words = command[1:] if command[0] == "exec" else command
                if words and Path(words[0]).name == "previewctl":
                    argv = words[1:]
                    assert not any("$" in arg for arg in argv), (
                        f"unresolved shell expansion in {argv}: teach this test its values"
                    )
                    if argv not in found:
                        found.append(argv)
    return found


def parse_cli(argv: list[str]) -> tuple[str, Any]:
    """Parse argv like `previewctl ARGV` would, without running anything.

    Returns the subcommand's name and its (click) context; raises UsageError when the command
    line would be rejected. Mirrors what the group's invoke() does before running anything.
    """
    group = get_command(app)
    ctx = group.make_context("previewctl", list(argv), resilient_parsing=False)
    head = getattr(ctx, "_protected_args", None)
    if head is None:  # click < 8.2
        head = getattr(ctx, "protected_args", [])
    rest = [*head, *ctx.args]
    if not rest:
        raise UsageError("Missing command.", ctx=ctx)
    get_sub = getattr(group, "resolve_command", None)
    assert get_sub is not None, "previewctl's top-level command is not a group"
    name, sub, sub_args = get_sub(ctx, rest)
    assert name is not None
    assert sub is not None
    sub_ctx = sub.make_context(name, sub_args, parent=ctx)
    return name, sub_ctx


def _invocations() -> list[tuple[str, list[str]]]:
    found = [
        (step.label, argv)
        for step in all_steps()
        if step.run and step.workflow != ACTION.name
        for argv in previewctl_argvs(step.run)
    ]
    found += [(step.label, argv) for step in action_steps() for argv in action_argvs(step)]
    return found


INVOCATIONS = _invocations()


# ---- (a) every previewctl command line in the workflows parses --------------------------------


@pytest.mark.parametrize(
    ("label", "argv"),
    INVOCATIONS,
    ids=[f"{label}:{shlex.join(argv)}" for label, argv in INVOCATIONS],
)
def test_workflow_previewctl_invocation_parses(label: str, argv: list[str]) -> None:
    try:
        parse_cli(argv)
    except UsageError as exc:
        pytest.fail(f"{label}: `previewctl {shlex.join(argv)}` is rejected: {exc.format_message()}")


def test_workflows_call_the_expected_commands() -> None:
    seen = {(label.split(":")[0], parse_cli(argv)[0]) for label, argv in INVOCATIONS}
    assert {
        ("preview.yml", "up"),
        ("preview.yml", "seed"),
        ("preview.yml", "down"),
        ("preview-gc.yml", "gc"),
    } <= seen


def test_gc_step_covers_both_dry_run_variants() -> None:
    gc_argvs = [argv[2:] for label, argv in INVOCATIONS if label.startswith("preview-gc.yml:")]
    assert sorted(gc_argvs) == [["gc"], ["gc", "--dry-run"]]
    _, ctx = parse_cli(["gc", "--dry-run"])
    assert ctx.params["dry_run"] is True


def _action_run_script() -> str:
    action = yaml.safe_load(ACTION.read_text())
    (step,) = [s for s in action["runs"]["steps"] if s.get("id") == "run"]
    assert step["env"] == {
        "COMMAND": "${{ inputs.command }}",
        "ARGS": "${{ inputs.args }}",
        "CONFIG": "${{ inputs.config }}",
    }
    return str(step["run"])


@pytest.mark.parametrize(
    ("label", "argv"),
    [(label, argv) for label, argv in INVOCATIONS if label.split(":")[0] != "action.yml"],
    ids=lambda value: value if isinstance(value, str) else shlex.join(value),
)
def test_the_action_runs_exactly_the_command_line_of_its_inputs(
    label: str, argv: list[str]
) -> None:
    """The action's script, given a step's inputs, runs the argv this file parses."""
    if argv[:1] != ["--config"]:
        pytest.skip("not a step through the action")
    config, command, args = argv[1], argv[2], argv[3:]
    script = (
        _action_run_script()
        .replace('"$CONFIG"', shlex.quote(config))
        .replace('"$COMMAND"', shlex.quote(command))
        .replace('"${extra[@]}"', " ".join(shlex.quote(a) for a in args))
    )
    assert previewctl_argvs(script) == [argv], label
    # `read -d '' -a` splits all of ARGS (every line) on whitespace, as action_argvs does
    assert """read -r -d '' -a extra <<< "$ARGS" || true""" in script


def test_the_action_accepts_only_commands_the_cli_has() -> None:
    script = _action_run_script()
    allowed = re.search(r"^\s*([a-z|]+)\) ;;$", script, re.MULTILINE)
    assert allowed is not None
    commands = allowed.group(1).split("|")
    assert {"up", "seed", "down", "gc", "status", "plan"} <= set(commands)
    for command in commands:
        assert parse_cli(["--config", "x.toml", command])[0] == command


@pytest.mark.parametrize(
    "line",
    [
        "previewctl up --bogus",
        "previewctl bogus",
        "previewctl",
        "previewctl --json",
        "previewctl gc --max-age",
        "previewctl stop",  # --pr is required
        "previewctl up --pr 1 extra",
    ],
)
def test_parse_helper_rejects_bad_command_lines(line: str) -> None:
    (argv,) = previewctl_argvs(line)
    with pytest.raises(UsageError):
        parse_cli(argv)


@pytest.mark.parametrize(
    "line",
    [
        "previewctl --json -v up",
        "previewctl up --pr 3 --json -v --config previewctl.toml",  # global options after
        "previewctl --config previewctl.toml down --pr 7 --branch feat/x",
        "previewctl gc --max-age 7d --dry-run",
        "exec previewctl seed && echo done",
    ],
)
def test_parse_helper_accepts_good_command_lines(line: str) -> None:
    (argv,) = previewctl_argvs(line)
    parse_cli(argv)


def test_array_expansion_yields_every_variant() -> None:
    script = 'args=(--max-age 7d)\nif x; then args+=(--dry-run); fi\npreviewctl gc "${args[@]}"\n'
    assert previewctl_argvs(script) == [
        ["gc", "--max-age", "7d"],
        ["gc", "--max-age", "7d", "--dry-run"],
    ]


# ---- (b) triggers, guards, concurrency, permissions -----------------------------------------


def test_no_pull_request_target_anywhere() -> None:
    for path in _workflow_files():
        workflow = yaml.safe_load(path.read_text())
        assert "pull_request_target" not in triggers(workflow), path.name
        assert "pull_request_target" not in yaml.safe_dump(workflow), path.name


def test_preview_triggers_and_concurrency() -> None:
    wf = load("preview.yml")
    on = triggers(wf)
    assert set(on) == {"pull_request"}
    # labeled/unlabeled: a profile's label turns it on or off (tests/test_agents_profiles.py)
    assert set(on["pull_request"]["types"]) == {
        "opened",
        "synchronize",
        "reopened",
        "labeled",
        "unlabeled",
        "closed",
    }
    assert wf["concurrency"] == {
        "group": "preview-${{ github.event.pull_request.number }}",
        "cancel-in-progress": False,
    }


@pytest.mark.parametrize(("job", "closed"), [("up", False), ("down", True)])
def test_preview_jobs_are_guarded(job: str, closed: bool) -> None:
    spec = load("preview.yml")["jobs"][job]
    condition = " ".join(str(spec["if"]).split())
    assert FORK_GUARD in condition
    assert DEPENDABOT_GUARD in condition
    expected = "github.event.action == 'closed'" if closed else "github.event.action != 'closed'"
    assert expected in condition
    assert "||" not in condition  # an `or` could bypass the guards
    assert isinstance(spec["timeout-minutes"], int)


def test_permissions_are_minimal() -> None:
    assert load("preview.yml")["permissions"] == {}
    assert load("preview-gc.yml")["permissions"] == {}
    assert load("ci.yml")["permissions"] == {"contents": "read"}
    jobs = load("preview.yml")["jobs"]
    for job in ("up", "down"):
        # the PR comment goes through the issues comments API on a PR: pull-requests: write;
        # the preview is a GitHub deployment (created by up, made inactive by down)
        assert jobs[job]["permissions"] == {
            "contents": "read",
            "pull-requests": "write",
            "deployments": "write",
        }
    gc_job = load("preview-gc.yml")["jobs"]["gc"]
    assert gc_job["permissions"] == {"contents": "read", "pull-requests": "read"}
    for path in _workflow_files():
        wf = yaml.safe_load(path.read_text())
        assert "permissions" in wf, f"{path.name}: no top-level permissions"
        for job_id, spec in wf["jobs"].items():
            perms = spec.get("permissions", wf["permissions"])
            assert perms not in ("write-all", "read-all"), f"{path.name}:{job_id}"
            assert isinstance(spec.get("timeout-minutes"), int), f"{path.name}:{job_id}"


def _command_of(step: dict[str, Any]) -> str:
    if step.get("uses") != "./":
        return ""
    with_ = step.get("with") or {}
    return " ".join([with_["command"], *str(with_.get("args", "")).split()])


def test_up_runs_before_seed_and_exposes_outputs() -> None:
    job = load("preview.yml")["jobs"]["up"]
    commands = [_command_of(step) for step in job["steps"]]
    assert commands.index("up") < commands.index("seed")
    up_step = job["steps"][commands.index("up")]
    assert up_step["id"] == "up"
    assert job["outputs"]["hostname"] == "${{ steps.up.outputs.hostname }}"
    assert job["outputs"]["app"] == "${{ steps.up.outputs.app }}"


def test_the_machine_boots_while_the_repository_tooling_installs() -> None:
    """`up --no-wait` first, then the tooling (`pnpm install`), then `up` and `seed`."""
    steps = load("preview.yml")["jobs"]["up"]["steps"]
    commands = [_command_of(step) for step in steps]
    early = commands.index("up --no-wait")
    tooling = next(i for i, s in enumerate(steps) if "pnpm install" in str(s.get("run", "")))
    assert early < tooling < commands.index("up") < commands.index("seed")
    assert [s.get("uses", "").split("@")[0] for s in steps[:early]] == ["actions/checkout"]
    # its failure must not end the job: the later `up` converges and reports it
    assert steps[early]["continue-on-error"] is True
    assert "continue-on-error" not in steps[commands.index("up")]


# ---- (c) no expressions expanded into scripts; (d) secrets only through env -------------------


def test_no_expression_in_run_scripts() -> None:
    for step in all_steps():
        if step.run is None:
            continue
        assert "${{ secrets." not in step.run, step.label
        assert "${{ github.event" not in step.run, step.label
        assert "${{" not in step.run, f"{step.label}: pass values through env:, not ${{{{ }}}}"


def test_previewctl_steps_get_credentials_through_env() -> None:
    steps = action_steps()
    assert len(steps) >= 5
    for step in steps:
        env = step.data.get("env") or {}
        assert env.get("FLY_API_TOKEN") == "${{ secrets.FLY_API_TOKEN }}", step.label
        if _command_of(step.data) == "up --no-wait":
            assert set(env) == {"FLY_API_TOKEN"}, step.label  # it needs nothing else
            continue
        assert env.get("VERCEL_TOKEN") == "${{ secrets.VERCEL_TOKEN }}", step.label
        assert env.get("GITHUB_TOKEN") == "${{ github.token }}", step.label
    # no workflow runs previewctl by itself any more: always through the action
    assert not [
        s for s in all_steps() if s.workflow != ACTION.name and s.run and "previewctl" in s.run
    ]


def test_secrets_appear_only_in_step_env() -> None:
    for step in all_steps():
        for key, value in step.data.items():
            if key != "env":
                assert "secrets." not in yaml.safe_dump(value), f"{step.label}: {key}"
        for name, value in (step.data.get("env") or {}).items():
            if "secrets." in str(value):
                assert name in SECRET_ENV + OPTIONAL_SECRET_ENV, f"{step.label}: {name}"


def test_the_llm_key_reaches_only_up_which_writes_the_vercel_vars() -> None:
    """ANTHROPIC_API_KEY is optional (a missing secret is empty); only `up` renders it."""
    holders = [step for step in all_steps() if "ANTHROPIC_API_KEY" in (step.data.get("env") or {})]
    assert [s.label for s in holders] == ["preview.yml:up:previewctl up"]
    assert holders[0].data["env"]["ANTHROPIC_API_KEY"] == "${{ secrets.ANTHROPIC_API_KEY }}"


def test_actions_are_sha_pinned_and_checkout_drops_credentials() -> None:
    for step in all_steps():
        uses = step.data.get("uses")
        if uses is None or uses == "./":
            continue
        assert SHA_PIN.match(uses), f"{step.label}: {uses} is not pinned to a commit"
        if uses.startswith("actions/checkout@"):
            assert step.data["with"]["persist-credentials"] is False, step.label
    text = ACTION.read_text()
    # setup-flyctl 1.6 runs on Node 24 (1.5 on the Node 20 GitHub is retiring)
    assert re.search(r"superfly/flyctl-actions/setup-flyctl@[0-9a-f]{40} # 1\.6\b", text)


# superfly/flyctl-actions: tag 1.6 (2026-04) is the release on Node 24 (`runs.using: node24`
# in setup-flyctl/action.yml); 1.5 runs on Node 20, which GitHub retires.
SETUP_FLYCTL_1_6 = "superfly/flyctl-actions/setup-flyctl@ed8efb33836e8b2096c7fd3ba1c8afe303ebbff1"


def test_setup_flyctl_is_pinned_to_its_node_24_release() -> None:
    templates = ROOT / "src" / "previewctl" / "templates" / "workflows"
    files = [*_workflow_files(), ACTION, *sorted(templates.glob("*.yml"))]
    pins = [
        line.split("uses:", 1)[1].strip()
        for path in files
        for line in path.read_text().splitlines()
        if "superfly/flyctl-actions/setup-flyctl@" in line
    ]
    assert pins, "no workflow sets up flyctl"
    assert set(pins) == {f"{SETUP_FLYCTL_1_6} # 1.6"}


# ---- (e) the gc workflow -------------------------------------------------------------------


def test_gc_workflow_schedule_and_dry_run_input() -> None:
    wf = load("preview-gc.yml")
    on = triggers(wf)
    assert on["schedule"] == [{"cron": "17 */6 * * *"}]
    dry_run = on["workflow_dispatch"]["inputs"]["dry_run"]
    assert dry_run["type"] == "boolean"
    assert dry_run["default"] is False
    assert wf["concurrency"]["group"] == "preview-gc"
    (step,) = [s for s in wf["jobs"]["gc"]["steps"] if _command_of(s).startswith("gc")]
    assert step["with"]["args"] == "${{ inputs.dry_run && '--dry-run' || '' }}"


# ---- the installed console script ---------------------------------------------------------


def test_console_script_rejects_a_bogus_option_with_exit_2() -> None:
    proc = subprocess.run(
        [previewctl_executable(), "up", "--bogus"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "--bogus" in proc.stderr
    assert "a bug in previewctl" not in proc.stderr
