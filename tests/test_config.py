"""previewctl.toml loading: the shipped default, and every error naming file, key and line."""

from __future__ import annotations

import copy
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from previewctl.config import Config, config_hash, load_config
from previewctl.errors import ConfigError
from previewctl.step_kinds import HttpStepConfig, RunStepConfig

REPO_CONFIG = Path(__file__).parents[1] / "previewctl.toml"

MACHINE: dict[str, Any] = {
    "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 512},
    "containers": [
        {
            "name": "db",
            "image": "postgres:18",
            "env": {"POSTGRES_PASSWORD": "${secrets.pg_password}", "APP": "${app.name}"},
        }
    ],
}

# Line numbers below refer to this text (line 1 is `[app]`).
BASE = """\
[app]
name = "pr-${pr}-svc"
org = "acme"

[secrets]
generate = ["pg_password"]

[tunnels.db]
remote_port = 5432
"""


def write(
    tmp_path: Path,
    toml: str,
    machine: dict[str, Any] | None = None,
    *,
    machine_text: str | None = None,
) -> Path:
    (tmp_path / ".fly").mkdir(exist_ok=True)
    machine_file = tmp_path / ".fly" / "machine-config.json"
    if machine_text is not None:
        machine_file.write_text(machine_text)
    else:
        machine_file.write_text(json.dumps(machine if machine is not None else MACHINE, indent=2))
    path = tmp_path / "previewctl.toml"
    path.write_text(textwrap.dedent(toml))
    return path


def load(tmp_path: Path, toml: str, machine: dict[str, Any] | None = None) -> Config:
    return load_config(write(tmp_path, toml, machine))


def config_error(tmp_path: Path, toml: str, machine: dict[str, Any] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, toml, machine)
    error = info.value
    assert error.exit_code == 2
    return error


def machine_with(**changes: Any) -> dict[str, Any]:
    machine = copy.deepcopy(MACHINE)
    machine.update(changes)
    return machine


# ---- what loads -------------------------------------------------------------------------
def test_shipped_default_config_loads() -> None:
    config = load_config(REPO_CONFIG)
    model = config.model
    assert config.app_name(12) == "pr-12-agents"
    assert config.name_pattern.match("pr-12-agents") is not None
    assert set(model.tunnels) == {"manage_db", "run_db", "spicedb"}
    assert [s.name for s in model.steps] == ["migrate", "wait-for-spicedb", "auth-init"]
    assert [s.timeout for s in model.steps] == [600.0, 180.0, 300.0]
    assert all(s.retries == 0 for s in [*model.steps, *model.seed])
    assert [s.name for s in model.seed] == ["build-cli", "project-json", "project"]
    assert model.seed[2].timeout == 120.0
    assert model.seed[1].creates == [model.seed[2].http.body_file]  # type: ignore[union-attr]
    admin = model.secrets.format["admin_password"]
    assert admin.length is not None
    assert admin.length >= 15
    assert set(admin.require) == {"lower", "upper", "digit", "symbol"}
    assert (model.secrets.format["anon_jwt_secret"].length or 0) >= 32
    for name in ("manage_db", "run_db"):
        login = model.tunnels[name].login
        assert login is not None
        assert login.database == "inkeep_agents"
    assert model.vercel is not None
    assert set(model.vercel.projects) == {"agents-api", "manage-ui"}
    assert model.gc.max_age == 7 * 86400
    assert model.gc.stop_after == 24 * 3600
    assert [c["name"] for c in config.machine_template["containers"]] == [
        "doltgres",
        "postgres",
        "spicedb",
    ]
    assert config.machine_template["services"]
    assert config.env_refs() == set()


def test_minimal_config_and_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, BASE)
    model = config.model
    assert config.root == tmp_path
    assert model.app.region == "iad"
    assert model.app.ips == []
    assert model.tunnels["db"].check == "tcp"
    assert model.tunnels["db"].local_port == 0
    assert model.vercel is None
    assert model.steps == []
    assert "services" not in config.machine_template
    assert config.known.secrets == frozenset({"pg_password"})
    assert config.known.tunnels == frozenset({"db"})
    assert config.known.vercel_projects == frozenset()


def test_step_timeout_durations(tmp_path: Path) -> None:
    toml = BASE + textwrap.dedent(
        """
        [[steps]]
        name = "a"
        run = "echo a"
        timeout = "5m"

        [[steps]]
        name = "b"
        run = ["echo", "b"]
        timeout = 42

        [[steps]]
        name = "c"
        run = "echo c"
        """
    )
    steps = load(tmp_path, toml).model.steps
    assert [s.timeout for s in steps] == [300.0, 42.0, 600.0]
    assert isinstance(steps[0], RunStepConfig)
    assert isinstance(steps[1], RunStepConfig)
    assert steps[0].argv("echo 'a b'") == ["echo", "a b"]
    assert steps[1].argv(["echo", "b"]) == ["echo", "b"]


def test_http_step_method_is_upper_cased(tmp_path: Path) -> None:
    toml = BASE + '\n[[seed]]\nname = "s"\nhttp = { method = "put", url = "https://x/${pr}" }\n'
    step = load(tmp_path, toml).model.seed[0]
    assert isinstance(step, HttpStepConfig)
    http = step.http
    assert http.method == "PUT"


def test_env_refs(tmp_path: Path) -> None:
    machine = machine_with(
        containers=[{"name": "db", "image": "postgres:${env.PG_VERSION}", "env": {}}]
    )
    toml = BASE + textwrap.dedent(
        """
        [[steps]]
        name = "migrate"
        run = ["pnpm", "--filter=${env.PKG}", "migrate"]
        env = { URL = "postgres://${tunnels.db.host}:${tunnels.db.port}/${env.DB_NAME}" }

        [[seed]]
        name = "s"
        http = { url = "https://${env.SEED_HOST}/x", headers = { X = "${env.SEED_HEADER}" } }
        """
    )
    config = load(tmp_path, toml, machine)
    # up/resume/env render everything but [[seed]]; seed renders only [[seed]]
    assert config.env_refs() == {"PG_VERSION", "PKG", "DB_NAME"}
    assert config.env_refs(seed=True) == {"SEED_HOST", "SEED_HEADER"}


# ---- config_hash ------------------------------------------------------------------------
def test_config_hash_is_stable_under_key_order() -> None:
    a = {"guest": {"cpus": 1, "memory_mb": 512}, "containers": [{"name": "x", "image": "y"}]}
    b = {"containers": [{"image": "y", "name": "x"}], "guest": {"memory_mb": 512, "cpus": 1}}
    assert config_hash(a, "iad") == config_hash(b, "iad")
    assert len(config_hash(a, "iad")) == 16


def test_config_hash_ignores_metadata_but_not_config_or_region() -> None:
    base = {"guest": {"cpus": 1}, "metadata": {"previewctl_secrets": "x"}}
    assert config_hash(base, "iad") == config_hash({**base, "metadata": {"other": "y"}}, "iad")
    assert config_hash(base, "iad") == config_hash({"guest": {"cpus": 1}}, "iad")
    assert config_hash(base, "iad") != config_hash(base, "ams")
    assert config_hash(base, "iad") != config_hash({"guest": {"cpus": 2}}, "iad")


# ---- TOML errors ------------------------------------------------------------------------
def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found") as info:
        load_config(tmp_path / "nope.toml")
    assert "nope.toml" in str(info.value)
    assert info.value.exit_code == 2


def test_malformed_toml_names_the_line(tmp_path: Path) -> None:
    error = config_error(tmp_path, BASE + "\nbroken = \n")
    assert error.line == 11
    assert str(error).startswith(f"{tmp_path / 'previewctl.toml'}:11: not valid TOML")


def test_unknown_top_level_key(tmp_path: Path) -> None:
    error = config_error(tmp_path, BASE + "\n[bogus]\nx = 1\n")
    assert (error.key, error.line) == ("bogus", 11)
    assert "previewctl.toml:11 [bogus]: unknown key 'bogus'" in str(error)


def test_unknown_key_in_a_section(tmp_path: Path) -> None:
    error = config_error(tmp_path, BASE.replace('org = "acme"', 'org = "acme"\norgs = "x"'))
    assert (error.key, error.line) == ("app.orgs", 4)
    assert "unknown key 'orgs'" in str(error)


def test_unknown_key_inside_steps(tmp_path: Path) -> None:
    toml = BASE + '\n[[steps]]\nname = "a"\nrun = "x"\ncommand = "y"\n'
    error = config_error(tmp_path, toml)
    assert (error.key, error.line) == ("steps[0].command", 14)
    assert "previewctl.toml:14 [steps[0].command]: unknown key 'command'" in str(error)


def test_error_in_a_later_step_points_at_that_step(tmp_path: Path) -> None:
    toml = BASE + textwrap.dedent(
        """
        [[steps]]
        name = "a"
        run = "x"
        timeout = "5m"

        [[steps]]
        name = "b"
        run = "y"
        timeout = "soon"
        """
    )
    error = config_error(tmp_path, toml)
    assert (error.key, error.line) == ("steps[1].timeout", 19)
    assert "'soon' is not a duration" in str(error)


@pytest.mark.parametrize(
    ("old", "new", "key", "line"),
    [
        ('org = "acme"', "org = 5", "app.org", 3),
        ("remote_port = 5432", 'remote_port = "5432x"', "tunnels.db.remote_port", 9),
        ("remote_port = 5432", "remote_port = 70000", "tunnels.db.remote_port", 9),
        ('generate = ["pg_password"]', 'generate = "pg_password"', "secrets.generate", 6),
        ('name = "pr-${pr}-svc"', 'name = "pr-${pr}-svc"\nips = ["v5"]', "app.ips[0]", 3),
    ],
)
def test_wrong_type_or_value(tmp_path: Path, old: str, new: str, key: str, line: int) -> None:
    error = config_error(tmp_path, BASE.replace(old, new))
    assert (error.key, error.line) == (key, line)
    assert f"previewctl.toml:{line} [{key}]" in str(error)


def test_missing_required_key(tmp_path: Path) -> None:
    error = config_error(tmp_path, BASE.replace('org = "acme"\n', ""))
    assert error.key == "app.org"
    assert "required key is missing" in str(error)
    assert error.line == 1  # the [app] table it belongs in


def test_several_problems_are_all_named(tmp_path: Path) -> None:
    error = config_error(tmp_path, BASE.replace('org = "acme"', "org = 5\nregion = 6"))
    assert str(error).startswith("2 problems")
    assert "[app.org]: Input should be a valid string" in str(error)
    assert "[app.region]: Input should be a valid string" in str(error)


# ---- app name ---------------------------------------------------------------------------
def test_app_name_must_contain_pr(tmp_path: Path) -> None:
    error = config_error(tmp_path, BASE.replace("pr-${pr}-svc", "fixed-name"))
    assert (error.key, error.line) == ("app.name", 2)
    assert "must contain ${pr}" in str(error)


@pytest.mark.parametrize("name", ["PR-${pr}-svc", "pr_${pr}", "pr-${pr}-" + "x" * 60])
def test_app_name_that_renders_invalid(tmp_path: Path, name: str) -> None:
    error = config_error(tmp_path, BASE.replace("pr-${pr}-svc", name))
    assert (error.key, error.line) == ("app.name", 2)
    assert "is invalid: use a-z, 0-9 and '-', at most 63 characters" in str(error)


def test_app_name_may_not_use_other_placeholders(tmp_path: Path) -> None:
    error = config_error(tmp_path, BASE.replace("pr-${pr}-svc", "pr-${pr}-${branch}"))
    assert (error.key, error.line) == ("app.name", 2)
    assert "${branch} is not allowed here" in str(error)


def test_app_name_rejects_a_literal_dollar_brace(tmp_path: Path) -> None:
    # `$${pr}` contains the text "${pr}" but is a literal, not a placeholder
    error = config_error(tmp_path, BASE.replace("pr-${pr}-svc", "pr-$${pr}-svc"))
    assert error.key == "app.name"


# ---- placeholders -----------------------------------------------------------------------
def test_unknown_placeholder_in_a_step(tmp_path: Path) -> None:
    toml = BASE + '\n[[steps]]\nname = "a"\nrun = "echo ${github.sha}"\n'
    error = config_error(tmp_path, toml)
    assert (error.key, error.line) == ("steps[0].run", 13)
    assert "unknown placeholder ${github.sha}" in str(error)


def test_unknown_secret_in_a_later_step_env(tmp_path: Path) -> None:
    toml = BASE + textwrap.dedent(
        """
        [[steps]]
        name = "a"
        run = "x"
        env = { A = "${secrets.pg_password}" }

        [[steps]]
        name = "b"
        run = "y"
        env = { A = "${secrets.nope}" }
        """
    )
    error = config_error(tmp_path, toml)
    assert (error.key, error.line) == ("steps[1].env.A", 19)
    assert "unknown secret in ${secrets.nope}" in str(error)


def test_unknown_placeholder_in_the_machine_config(tmp_path: Path) -> None:
    machine = machine_with(
        containers=[{"name": "db", "image": "postgres:18", "env": {"P": "${secrets.nope}"}}]
    )
    error = config_error(tmp_path, BASE, machine)
    assert error.file == str((tmp_path / ".fly" / "machine-config.json").resolve())
    assert error.key is not None
    assert error.key.endswith("containers[0].env.P")
    # the line in the machine config JSON, not one of previewctl.toml
    machine_text = (tmp_path / ".fly" / "machine-config.json").read_text().splitlines()
    assert error.line is not None
    assert "${secrets.nope}" in machine_text[error.line - 1]
    assert f"machine-config.json:{error.line} [containers[0].env.P]" in str(error)
    assert "unknown secret in ${secrets.nope}" in str(error)


def test_machine_config_may_not_use_tunnels(tmp_path: Path) -> None:
    machine = machine_with(
        containers=[{"name": "db", "image": "x", "env": {"P": "${tunnels.db.port}"}}]
    )
    error = config_error(tmp_path, BASE, machine)
    assert "machine-config.json" in str(error)
    assert "not allowed here" in str(error)


def test_tunnel_placeholder_in_a_vercel_value(tmp_path: Path) -> None:
    toml = BASE + '\n[vercel.projects.api]\nenv = { DB = "postgres://h:${tunnels.db.port}/x" }\n'
    error = config_error(tmp_path, toml)
    assert (error.key, error.line) == ("vercel.projects.api.env.DB", 12)
    assert "${tunnels.db.port} is not allowed here" in str(error)
    assert "previewctl.toml:12" in str(error)


@pytest.mark.parametrize(
    "value",
    [
        "postgresql://u:${secrets.pg_password}@localhost:5432/db",
        "postgresql://u:${secrets.pg_password}@127.0.0.1:5432/db",
        "http://LOCALHOST:3000",
    ],
)
def test_local_address_in_a_vercel_value(tmp_path: Path, value: str) -> None:
    toml = BASE + f'\n[vercel.projects.api]\nenv = {{ DB = "{value}" }}\n'
    error = config_error(tmp_path, toml)
    assert (error.key, error.line) == ("vercel.projects.api.env.DB", 12)
    assert "must not point at localhost" in str(error)


def test_vercel_value_with_public_hostname_is_fine(tmp_path: Path) -> None:
    value = "postgresql://u:${secrets.pg_password}@${app.hostname}:5432/db?sslmode=require"
    toml = BASE + f'\n[vercel.projects.api]\nenv = {{ DB = "{value}" }}\n'
    config = load(tmp_path, toml)
    assert config.model.vercel is not None
    assert config.model.vercel.projects["api"].env["DB"] == value


def test_vercel_url_in_a_step_needs_a_domain(tmp_path: Path) -> None:
    toml = BASE + textwrap.dedent(
        """
        [[steps]]
        name = "a"
        run = "x"
        env = { API = "${vercel.api.url}" }

        [vercel.projects.api]
        env = { X = "1" }
        """
    )
    error = config_error(tmp_path, toml)
    assert (error.key, error.line) == ("steps[0].env.API", 14)
    assert "${vercel.api.url} outside [[seed]] needs a `domain`" in str(error)


def test_vercel_url_in_seed_or_with_a_domain_is_fine(tmp_path: Path) -> None:
    seed = '\n[[seed]]\nname = "s"\nhttp = { url = "${vercel.api.url}/x" }\n'
    project = "\n[vercel.projects.api]\n"
    assert load(tmp_path, BASE + seed + project).model.seed[0].name == "s"
    step = '\n[[steps]]\nname = "a"\nrun = "curl ${vercel.api.url}"\n'
    domain = '\n[vercel.projects.api]\ndomain = "pr-${pr}.example.com"\n'
    assert load(tmp_path, BASE + step + domain).model.steps[0].name == "a"


def test_unknown_vercel_project(tmp_path: Path) -> None:
    toml = BASE + '\n[[seed]]\nname = "s"\nhttp = { url = "${vercel.web.url}" }\n'
    error = config_error(tmp_path, toml)
    assert error.key == "seed[0].http.url"
    assert "unknown Vercel project" in str(error)


# ---- steps ------------------------------------------------------------------------------
def test_step_with_both_run_and_http(tmp_path: Path) -> None:
    toml = BASE + '\n[[steps]]\nname = "a"\nrun = "x"\nhttp = { url = "https://x" }\n'
    error = config_error(tmp_path, toml)
    assert (error.key, error.line) == ("steps[0]", 11)
    assert "exactly one of `run` or `http`" in str(error)


def test_step_with_neither_run_nor_http(tmp_path: Path) -> None:
    error = config_error(tmp_path, BASE + '\n[[steps]]\nname = "a"\n')
    assert error.key == "steps[0]"
    assert "exactly one of `run` or `http`" in str(error)


@pytest.mark.parametrize(
    ("run", "message"),
    [('""', "`run` is empty"), ("[]", "empty list"), ('"echo \'x"', "cannot be split")],
)
def test_step_run_must_be_usable(tmp_path: Path, run: str, message: str) -> None:
    error = config_error(tmp_path, BASE + f'\n[[steps]]\nname = "a"\nrun = {run}\n')
    assert error.key == "steps[0]"
    assert message in str(error)


@pytest.mark.parametrize("timeout", ['"5 parsecs"', '"-5m"', "0", "true"])
def test_bad_step_timeout(tmp_path: Path, timeout: str) -> None:
    toml = BASE + f'\n[[steps]]\nname = "a"\nrun = "x"\ntimeout = {timeout}\n'
    error = config_error(tmp_path, toml)
    assert (error.key, error.line) == ("steps[0].timeout", 14)


def test_bad_gc_duration(tmp_path: Path) -> None:
    error = config_error(tmp_path, BASE + '\n[gc]\nmax_age = "a week"\n')
    assert (error.key, error.line) == ("gc.max_age", 12)
    assert "is not a duration" in str(error)


def test_a_gc_max_age_under_an_hour_still_loads(tmp_path: Path) -> None:
    """gc refuses it (tests/ops/test_gc.py); `down` on a PR's close must still run."""
    config = load(tmp_path, BASE + '\n[gc]\nmax_age = "10m"\n')
    assert config.model.gc.max_age == 600


# ---- the machine config -----------------------------------------------------------------
def test_missing_machine_config(tmp_path: Path) -> None:
    toml = BASE + '\n[machine]\nconfig = "fly/other.json"\n'
    error = config_error(tmp_path, toml)
    assert error.file == str(tmp_path / "previewctl.toml")
    assert (error.key, error.line) == ("machine.config", 12)
    assert "machine config other.json not found" in str(error)


def test_machine_config_invalid_json(tmp_path: Path) -> None:
    path = write(tmp_path, BASE, machine_text='{\n  "guest": {},\n  "containers": [,]\n}\n')
    with pytest.raises(ConfigError, match="not valid JSON") as info:
        load_config(path)
    error = info.value
    assert error.file == str((tmp_path / ".fly" / "machine-config.json").resolve())
    assert error.line == 3
    assert "machine-config.json:3" in str(error)


def test_machine_config_not_an_object(tmp_path: Path) -> None:
    path = write(tmp_path, BASE, machine_text="[]")
    with pytest.raises(ConfigError, match="must be a JSON object"):
        load_config(path)


def test_machine_config_without_containers_or_image(tmp_path: Path) -> None:
    error = config_error(tmp_path, BASE, {"guest": {"cpus": 1, "memory_mb": 256}})
    assert "machine-config.json" in str(error)
    assert "needs `containers`" in str(error)


def test_machine_config_with_top_level_image_is_fine(tmp_path: Path) -> None:
    config = load(tmp_path, BASE, {"image": "nginx:1"})
    assert config.machine_template == {"image": "nginx:1"}


def test_machine_memory_multiple_of_256(tmp_path: Path) -> None:
    machine = machine_with(guest={"cpu_kind": "shared", "cpus": 1, "memory_mb": 1000})
    error = config_error(tmp_path, BASE, machine)
    assert error.key == "guest.memory_mb"
    assert "multiple of 256" in str(error)
    assert "machine-config.json" in str(error)


def test_machine_container_needs_an_image(tmp_path: Path) -> None:
    error = config_error(tmp_path, BASE, machine_with(containers=[{"name": "db"}]))
    assert error.key == "containers[0].image"


def test_machine_container_names_unique(tmp_path: Path) -> None:
    containers = [{"name": "db", "image": "a"}, {"name": "db", "image": "b"}]
    error = config_error(tmp_path, BASE, machine_with(containers=containers))
    assert "container names must be unique" in str(error)


def test_reserved_metadata_key(tmp_path: Path) -> None:
    error = config_error(tmp_path, BASE, machine_with(metadata={"previewctl_pr": "1"}))
    assert error.key == "metadata"
    assert "'previewctl_pr' is reserved" in str(error)
    assert "machine-config.json" in str(error)


def test_other_metadata_keys_are_fine(tmp_path: Path) -> None:
    config = load(tmp_path, BASE, machine_with(metadata={"team": "core"}))
    assert config.machine_template["metadata"] == {"team": "core"}


# ---- secret formats ---------------------------------------------------------------------
FORMATS = BASE.replace('generate = ["pg_password"]', 'generate = ["pg_password", "admin", "nango"]')


def test_secret_formats_load(tmp_path: Path) -> None:
    toml = FORMATS + textwrap.dedent(
        """
        [secrets.format.admin]
        length = 24
        require = ["lower", "upper", "digit", "symbol"]

        [secrets.format.nango]
        kind = "uuid4"
        """
    )
    formats = load(tmp_path, toml).model.secrets.format
    assert formats["admin"].length == 24
    assert formats["admin"].require == ["lower", "upper", "digit", "symbol"]
    assert formats["nango"].kind == "uuid4"
    assert "pg_password" not in formats


@pytest.mark.parametrize(
    ("body", "key", "line", "message"),
    [
        ("length = 8", "secrets.format.admin.length", 12, "greater than or equal to 16"),
        ('require = ["lower", "emoji"]', "secrets.format.admin.require[1]", 12, "'symbol'"),
        ('kind = "uuid4"\nlength = 20', "secrets.format.admin", 11, "fixed shape"),
        ("size = 3", "secrets.format.admin.size", 12, "unknown key 'size'"),
    ],
)
def test_bad_secret_format_names_file_and_line(
    tmp_path: Path, body: str, key: str, line: int, message: str
) -> None:
    toml = FORMATS + "\n[secrets.format.admin]\n" + body + "\n"
    error = config_error(tmp_path, toml)
    assert (error.key, error.line) == (key, line)
    assert f"previewctl.toml:{line} [{key}]" in str(error)
    assert message in str(error)


def test_secret_format_for_a_secret_that_is_not_generated(tmp_path: Path) -> None:
    error = config_error(tmp_path, FORMATS + '\n[secrets.format.admni]\nkind = "hex"\n')
    assert (error.key, error.line) == ("secrets.format.admni", 11)
    assert 'add "admni" to [secrets] generate' in str(error)


# ---- optional env, creates, probe logins ------------------------------------------------
def test_env_refs_with_a_default_are_not_required(tmp_path: Path) -> None:
    toml = BASE + textwrap.dedent(
        """
        [[steps]]
        name = "a"
        run = "echo ${env.NEEDED} ${env.OPTIONAL:-} ${env.LEVEL:-info}"
        """
    )
    assert load(tmp_path, toml).env_refs() == {"NEEDED"}


def test_a_default_outside_env_is_a_config_error(tmp_path: Path) -> None:
    toml = BASE + '\n[[steps]]\nname = "a"\nrun = "echo ${pr:-1}"\n'
    error = config_error(tmp_path, toml)
    assert error.key == "steps[0].run"
    assert "only ${env.NAME:-DEFAULT} may have a default" in str(error)


def test_creates_is_for_run_steps(tmp_path: Path) -> None:
    ok = BASE + '\n[[seed]]\nname = "gen"\nrun = "gen"\ncreates = ["out/p.json"]\n'
    step = load(tmp_path, ok).model.seed[0]
    assert isinstance(step, RunStepConfig)
    assert step.creates == ["out/p.json"]
    bad = BASE + '\n[[seed]]\nname = "s"\nhttp = { url = "https://x" }\ncreates = ["p.json"]\n'
    error = config_error(tmp_path, bad)
    assert "`creates` is for `run` steps" in str(error)
    unknown = BASE + '\n[[seed]]\nname = "gen"\nrun = "gen"\ncreates = ["${secrets.pg_password}"]\n'
    assert "not allowed here" in str(config_error(tmp_path, unknown))


def test_tunnel_login(tmp_path: Path) -> None:
    login = 'login = { user = "app", password = "${secrets.pg_password}", database = "db" }\n'
    toml = BASE + 'check = "postgres"\n' + login
    tunnel = load(tmp_path, toml).model.tunnels["db"]
    assert tunnel.login is not None
    assert (tunnel.login.user, tunnel.login.database) == ("app", "db")
    error = config_error(tmp_path, BASE + 'check = "tcp"\n' + login)
    assert '`login` is for check = "postgres"' in str(error)
    unknown = toml.replace("secrets.pg_password", "secrets.nope")
    error = config_error(tmp_path, unknown)
    assert (error.key, error.line) == ("tunnels.db.login.password", 11)
    assert "tunnels" in (error.key or "")


# ---- values Fly, Vercel and the OS would refuse (or crash on) later -------------------------
@pytest.mark.parametrize(
    ("old", "new", "key", "message"),
    [
        ('org = "acme"', 'org = ""', "app.org", "not a Fly organization slug"),
        ('org = "acme"', 'org = "Acme Corp"', "app.org", "not a Fly organization slug"),
        ('org = "acme"', 'org = "acme-"', "app.org", "not a Fly organization slug"),
        ('org = "acme"', 'org = "acme"\nregion = ""', "app.region", "not a Fly region code"),
        ('org = "acme"', 'org = "acme"\nregion = "IAD"', "app.region", "not a Fly region code"),
        ('org = "acme"', 'org = "acme"\nregion = "i d"', "app.region", "not a Fly region code"),
        (
            '"pr-${pr}-svc"',
            '"pr-${pr}-svc\\n"',
            "app.name",
            "'pr-99999-svc\\n' is invalid",
        ),
    ],
)
def test_app_values_fly_would_refuse(
    tmp_path: Path, old: str, new: str, key: str, message: str
) -> None:
    error = config_error(tmp_path, BASE.replace(old, new))
    assert error.key == key
    assert message in str(error)


@pytest.mark.parametrize(
    ("guest", "message"),
    [
        ({"cpu_kind": "shared", "cpus": 1, "memory_mb": 4096}, "256-2048 MB"),
        ({"cpu_kind": "shared", "cpus": 4, "memory_mb": 16384}, "1024-8192 MB"),
        ({"cpu_kind": "shared", "cpus": 4, "memory_mb": 768}, "1024-8192 MB"),
        ({"cpu_kind": "performance", "cpus": 1, "memory_mb": 1024}, "2048-8192 MB"),
        ({"cpu_kind": "performance", "cpus": 2, "memory_mb": 32768}, "4096-16384 MB"),
    ],
)
def test_memory_beyond_flys_limits(tmp_path: Path, guest: dict[str, Any], message: str) -> None:
    error = config_error(tmp_path, BASE, machine_with(guest=guest))
    assert error.key == "guest"
    assert "outside Fly's limits" in str(error)
    assert message in str(error)


@pytest.mark.parametrize(
    "guest",
    [
        {"cpu_kind": "shared", "cpus": 1, "memory_mb": 256},
        {"cpu_kind": "shared", "cpus": 1, "memory_mb": 2048},
        {"cpu_kind": "shared", "cpus": 4, "memory_mb": 4096},
        {"cpu_kind": "performance", "cpus": 2, "memory_mb": 16384},
    ],
)
def test_memory_within_flys_limits(tmp_path: Path, guest: dict[str, Any]) -> None:
    assert load(tmp_path, BASE, machine_with(guest=guest)).machine_template["guest"] == guest


@pytest.mark.parametrize("depth", [40, 500, 5000])
def test_machine_config_nested_far_too_deep(tmp_path: Path, depth: int) -> None:
    nested = '{"a": ' * depth + '"x"' + "}" * depth
    text = json.dumps(MACHINE).replace('"${app.name}"', nested)
    with pytest.raises(ConfigError, match="nests more than 32 levels deep"):
        load_config(write(tmp_path, BASE, machine_text=text))


def test_machine_config_deeper_than_json_can_parse(tmp_path: Path) -> None:
    text = '{"containers": ' + "[" * 100_000 + "]" * 100_000 + "}"
    with pytest.raises(ConfigError, match="nests more than 32 levels deep"):
        load_config(write(tmp_path, BASE, machine_text=text))


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("[timeouts]\nmachine = nan", "finite"),
        ("[timeouts]\nready = inf", "finite"),
        ("[timeouts]\ntunnel = 0", "greater than 0"),
        ('[timeouts]\nmachine = "' + "9" * 400 + 's"', "finite"),
        ("[gc]\nmax_age = nan", "finite"),
        ("[gc]\nstop_after = inf", "finite"),
        ("[vercel]\ndeployment_timeout = inf", "finite"),
        ('[[steps]]\nname = "x"\nrun = "true"\ntimeout = nan', "finite"),
    ],
)
def test_non_finite_durations(tmp_path: Path, section: str, message: str) -> None:
    error = config_error(tmp_path, BASE + "\n" + section + "\n")
    assert message in str(error)


@pytest.mark.parametrize("key", ["", "1ABC", "A-B", "A B", "A\nB"])
def test_vercel_env_key_must_be_a_valid_name(tmp_path: Path, key: str) -> None:
    toml = BASE + f'\n[vercel.projects.web]\nenv = {{ {json.dumps(key)} = "x" }}\n'
    error = config_error(tmp_path, toml)
    assert error.key == "vercel.projects.web.env"
    assert f"Vercel env key {key!r} is invalid" in str(error)


@pytest.mark.parametrize(("key", "value"), [("", "x"), ("A=B", "x"), ("A", "nul\u0000")])
def test_step_env_the_os_would_refuse(tmp_path: Path, key: str, value: str) -> None:
    toml = BASE + (
        f'\n[[steps]]\nname = "x"\nrun = "true"\nenv = {{ {json.dumps(key)} = {json.dumps(value)} }}\n'
    )
    error = config_error(tmp_path, toml)
    assert error.key == "steps[0].env"


def test_two_tunnels_with_the_same_fixed_local_port(tmp_path: Path) -> None:
    toml = BASE.replace("remote_port = 5432", "remote_port = 5432\nlocal_port = 15432") + (
        "\n[tunnels.other]\nremote_port = 5433\nlocal_port = 15432\n"
        "\n[tunnels.free1]\nremote_port = 1\n\n[tunnels.free2]\nremote_port = 2\n"
    )
    error = config_error(tmp_path, toml)
    assert error.key == "tunnels"
    assert "tunnels db and other all use local_port 15432" in str(error)


def test_every_config_problem_is_reported_at_once(tmp_path: Path) -> None:
    """The TOML, the machine config and the templates: one run names them all."""
    toml = BASE.replace('org = "acme"', 'org = ""\nregion = ""') + (
        '\n[[steps]]\nname = "x"\nrun = "echo ${secrets.nope}"\n'
    )
    machine = machine_with(guest={"cpu_kind": "shared", "cpus": 1, "memory_mb": 8192})
    with pytest.raises(ConfigError) as info:
        load(tmp_path, toml, machine)
    text = str(info.value)
    assert text.startswith("3 problems")  # templates are checked once the TOML is valid
    assert "[app.org]" in text
    assert "[app.region]" in text
    assert "outside Fly's limits" in text
    fixed = toml.replace('org = ""\nregion = ""', 'org = "acme"')
    with pytest.raises(ConfigError) as again:
        load(tmp_path, fixed, machine)
    assert str(again.value).startswith("2 problems")
    assert "outside Fly's limits" in str(again.value)
    assert "${secrets.nope}" in str(again.value)


# ---- Fly's own keys (fly-go's json tags) are never taken for near misses ----------------
def test_every_key_fly_go_declares_loads_without_a_near_miss_error(tmp_path: Path) -> None:
    """max_memory_mb, cache_drive, spot, force_instance_description are Fly's: no error."""
    machine = machine_with(
        guest={"cpu_kind": "shared", "cpus": 1, "memory_mb": 512, "max_memory_mb": 1024},
        cache_drive={"size_gb": 10},
        spot={},
        services=[
            {
                "protocol": "tcp",
                "internal_port": 8080,
                "ports": [{"port": 443, "handlers": ["tls", "http"]}],
                "force_instance_description": "x",
            }
        ],
    )
    config = load(tmp_path, BASE, machine)
    assert config.model.app.org == "acme"


@pytest.mark.parametrize(
    ("where", "key", "best"),
    [("services", "tcp_checks", "checks"), ("guest", "memory", "memory_mb")],
)
def test_a_fly_toml_key_in_the_machine_config_is_a_near_miss(
    tmp_path: Path, where: str, key: str, best: str
) -> None:
    """fly.toml's `tcp_checks` is not a Machines API field: Fly would drop the checks."""
    machine = copy.deepcopy(MACHINE)
    if where == "guest":
        machine["guest"][key] = 512
    else:
        machine["services"] = [
            {"protocol": "tcp", "internal_port": 8080, "ports": [{"port": 443}], key: []}
        ]
    error = config_error(tmp_path, BASE, machine)
    assert f"did you mean {best!r}" in str(error), str(error)
