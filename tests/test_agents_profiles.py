"""The agents config's shipped profiles (tracing, nango) and the workflow that turns them
on and off by PR label.

The workflow's job conditions are evaluated, not just read: a small evaluator of GitHub's
expression language (the operators, `contains`, `startsWith`, `fromJSON`, null property
access and case-insensitive string comparison, as GitHub documents them) runs each `if:`
against the events GitHub sends.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import yaml

from previewctl import secretgen
from tests.support.cli import base_env, previewctl_executable

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = [
    ROOT / ".github" / "workflows" / "preview.yml",
    ROOT / "src" / "previewctl" / "templates" / "workflows" / "preview.yml",
]

# ---- a GitHub Actions expression evaluator (the subset the workflows use) ------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<op>&&|\|\||==|!=|!|\(|\)|,)"
    r"|(?P<num>-?\d+(?:\.\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_.\-\[\]*]*))"
)


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        assert match, f"cannot read the expression at {text[pos:]!r}"
        assert match.end() > pos, f"cannot read the expression at {text[pos:]!r}"
        kind = match.lastgroup
        assert kind is not None
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


def _lookup(context: dict[str, Any], path: str) -> Any:
    value: Any = context
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.casefold() == b.casefold()  # GitHub compares strings ignoring case
    return bool(a == b)


def _call(name: str, args: list[Any]) -> Any:
    if name == "fromJSON":
        return json.loads(args[0])
    if name == "startsWith":
        return _text(args[0]).casefold().startswith(_text(args[1]).casefold())
    if name == "contains":
        haystack, needle = args
        if isinstance(haystack, list):
            return any(_equal(item, needle) for item in haystack)
        return _text(needle).casefold() in _text(haystack).casefold()
    raise AssertionError(f"function {name} is not in this evaluator")


class _Parser:
    def __init__(self, text: str, context: dict[str, Any]) -> None:
        self.tokens, self.i, self.context = _tokens(text), 0, context

    def peek(self) -> str | None:
        return self.tokens[self.i][1] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        self.i += 1
        return self.tokens[self.i - 1]

    def parse(self) -> Any:
        value = self.or_()
        assert self.i == len(self.tokens), f"unread tokens: {self.tokens[self.i :]}"
        return value

    def or_(self) -> Any:
        value = self.and_()
        while self.peek() == "||":
            self.take()
            right = self.and_()
            value = value or right
        return value

    def and_(self) -> Any:
        value = self.equality()
        while self.peek() == "&&":
            self.take()
            right = self.equality()
            value = value and right
        return value

    def equality(self) -> Any:
        value = self.unary()
        while self.peek() in ("==", "!="):
            op = self.take()[1]
            right = self.unary()
            value = _equal(value, right) if op == "==" else not _equal(value, right)
        return value

    def unary(self) -> Any:
        if self.peek() == "!":
            self.take()
            return not self.unary()
        return self.primary()

    def primary(self) -> Any:
        kind, text = self.take()
        if text == "(":
            value = self.or_()
            assert self.take()[1] == ")"
            return value
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if kind == "num":
            return float(text)
        if text in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[text]
        if self.peek() == "(":
            self.take()
            args: list[Any] = []
            while self.peek() != ")":
                args.append(self.or_())
                if self.peek() == ",":
                    self.take()
            self.take()
            return _call(text, args)
        return _lookup(self.context, text)


def evaluate(expression: str, context: dict[str, Any]) -> bool:
    return bool(_Parser(expression, context).parse())


def test_the_evaluator_follows_githubs_rules() -> None:
    ctx = {"github": {"event": {"action": "Labeled", "label": {"name": "Preview:Tracing"}}}}
    assert evaluate("github.event.action == 'labeled'", ctx)  # strings ignore case
    assert evaluate("startsWith(github.event.label.name, 'preview:')", ctx)
    assert not evaluate("startsWith(github.event.missing.name, 'preview:')", ctx)  # null -> ''
    assert evaluate('contains(fromJSON(\'["a", "labeled"]\'), github.event.action)', ctx)
    assert not evaluate("!(true && !false) || false", ctx)
    assert evaluate("'it''s' == 'IT''S'", ctx)


# ---- the workflow's reaction to labels -----------------------------------------------------

REPO = "acme/app"


def _event(action: str, *, label: str | None = None, state: str = "open") -> dict[str, Any]:
    event: dict[str, Any] = {
        "action": action,
        "pull_request": {
            "number": 7,
            "state": "closed" if action == "closed" else state,
            "head": {"ref": "feature", "repo": {"full_name": REPO}},
            "labels": [{"name": "preview:tracing"}],
        },
    }
    if label is not None:
        event["label"] = {"name": label}
    return {"github": {"event": event, "repository": REPO, "actor": "octocat"}}


def _jobs(path: Path) -> dict[str, Any]:
    jobs = yaml.safe_load(path.read_text())["jobs"]
    assert isinstance(jobs, dict)
    return jobs


def _runs(path: Path, context: dict[str, Any]) -> set[str]:
    return {name for name, job in _jobs(path).items() if evaluate(str(job["if"]), context)}


@pytest.mark.parametrize("path", WORKFLOWS, ids=["repo", "template"])
def test_the_workflow_listens_to_label_changes(path: Path) -> None:
    on = yaml.safe_load(path.read_text())
    types = on.get("on", on.get(True))["pull_request"]["types"]
    assert {"labeled", "unlabeled"} <= set(types)


@pytest.mark.parametrize("path", WORKFLOWS, ids=["repo", "template"])
@pytest.mark.parametrize(
    ("context", "jobs"),
    [
        pytest.param(_event("opened"), {"up"}, id="opened"),
        pytest.param(_event("synchronize"), {"up"}, id="synchronize"),
        pytest.param(_event("reopened"), {"up"}, id="reopened"),
        # a reviewer adds or removes a profile's label: up runs and converges the set
        pytest.param(_event("labeled", label="preview:tracing"), {"up"}, id="add-tracing"),
        pytest.param(_event("unlabeled", label="preview:tracing"), {"up"}, id="remove-tracing"),
        pytest.param(_event("labeled", label="preview:nango"), {"up"}, id="add-nango"),
        # a label no profile has changes nothing: no job at all
        pytest.param(_event("labeled", label="bug"), set(), id="add-other-label"),
        pytest.param(_event("unlabeled", label="needs review"), set(), id="remove-other-label"),
        # labelling a closed PR must not bring its preview back
        pytest.param(
            _event("labeled", label="preview:tracing", state="closed"), set(), id="label-closed-pr"
        ),
        pytest.param(_event("closed"), {"down"}, id="closed"),
    ],
)
def test_which_jobs_an_event_starts(path: Path, context: dict[str, Any], jobs: set[str]) -> None:
    assert _runs(path, context) == jobs


@pytest.mark.parametrize("path", WORKFLOWS, ids=["repo", "template"])
def test_label_events_keep_the_fork_and_dependabot_guards(path: Path) -> None:
    fork = _event("labeled", label="preview:tracing")
    fork["github"]["event"]["pull_request"]["head"]["repo"]["full_name"] = "someone/fork"
    assert _runs(path, fork) == set()
    bot = _event("labeled", label="preview:tracing")
    bot["github"]["actor"] = "dependabot[bot]"
    assert _runs(path, bot) == set()


# ---- the shipped profiles ------------------------------------------------------------------

CONFIG = ROOT / "previewctl.toml"
PROFILES = ROOT / ".fly" / "profiles"
HOSTNAME = "pr-1-agents.fly.dev"  # plan's example PR 1
# Listeners the base containers open by themselves (not in the machine config): Doltgres on
# 5432, SpiceDB gRPC 50051 and HTTP 8443 (agents-stack.md); Postgres' port is its PGPORT.
BASE_LISTENERS = {5432, 50051, 8443}
# Jaeger all-in-one 1.x's fixed TCP listeners besides the OTLP ones it is told: UI 16686,
# query gRPC 16685, collector gRPC 14250 and HTTP 14268, admin 14269, sampling 5778.
JAEGER_LISTENERS = {16686, 16685, 14250, 14268, 14269, 5778}
# Memory estimates, upper ends (agents-stack.md "Stage 1B"), MB.
CORE_MB, COLLECTOR_MB, JAEGER_MB, NANGO_MB = 3300, 150, 300, 680


def _plan(tmp_path: Path, *profiles: str, env: dict[str, str] | None = None) -> Any:
    result = _run_plan(tmp_path, *profiles, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _run_plan(
    tmp_path: Path, *profiles: str, env: dict[str, str] | None = None, config: Path = CONFIG
) -> subprocess.CompletedProcess[str]:
    flags = [arg for name in profiles for arg in ("--profile", name)]
    return subprocess.run(
        [previewctl_executable(), "--config", str(config), "--json", "plan", *flags],
        cwd=tmp_path,
        env={**base_env(tmp_path), **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _toml() -> dict[str, Any]:
    return tomllib.loads(CONFIG.read_text())


def _machine(name: str) -> dict[str, Any]:
    data = json.loads((PROFILES / f"{name}.json").read_text())
    assert isinstance(data, dict)
    return data


def _container(machine: dict[str, Any], name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [c for c in machine["containers"] if c["name"] == name]
    assert len(found) == 1, name
    return found[0]


def _port_of(host_port: str) -> int:
    return int(host_port.rsplit(":", 1)[1])


def test_each_profile_is_labelled_preview_colon_so_the_workflow_reacts() -> None:
    """The workflow starts a job only for labels starting `preview:` (see above)."""
    profiles = _toml()["profiles"]
    assert set(profiles) == {"tracing", "nango", "signoz"}
    for name, profile in profiles.items():
        assert profile["labels"] == [f"preview:{name}"]


@pytest.mark.parametrize(
    "active",
    [(), ("tracing",), ("nango",), ("signoz",), ("tracing", "nango"), ("nango", "signoz")],
    ids=lambda a: "+".join(a) or "base",
)
def test_the_shipped_config_plans_with_each_set_of_profiles(
    tmp_path: Path, active: tuple[str, ...]
) -> None:
    plan = _plan(tmp_path, *active)
    assert sorted(plan["profiles"]) == sorted(active)
    assert plan["unset_env"] == []


def test_init_writes_the_profiles_machine_files(tmp_path: Path) -> None:
    """A repository that runs `previewctl init` gets profiles that plan as shipped."""
    repo = tmp_path / "repo"
    repo.mkdir()
    init = subprocess.run(
        [previewctl_executable(), "init", "--template", "agents", str(repo)],
        cwd=tmp_path,
        env=base_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert init.returncode == 0, init.stderr
    for name in ("tracing.json", "otel-collector.yaml", "nango.json"):
        assert (repo / ".fly" / "profiles" / name).read_bytes() == (PROFILES / name).read_bytes()
    result = _run_plan(tmp_path, "tracing", "nango", config=repo / "previewctl.toml")
    assert result.returncode == 0, result.stderr
    assert sorted(json.loads(result.stdout)["profiles"]) == ["nango", "tracing"]


def test_tracing_and_signoz_exclude_each_other(tmp_path: Path) -> None:
    """Both set the OTLP vars: one run cannot send traces to both."""
    result = _run_plan(tmp_path, "tracing", "signoz")
    assert result.returncode == 2
    assert "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" in result.stderr
    assert "profile signoz" in result.stderr


def test_plan_tracing_shows_the_collector_jaeger_and_secrets_as_stars(tmp_path: Path) -> None:
    plan = _plan(tmp_path, "tracing")
    images = {c["name"]: c["image"] for c in plan["machine"]["containers"]}
    assert images["otel-collector"] == "otel/opentelemetry-collector-contrib:0.135.0"
    assert images["jaeger"] == "jaegertracing/all-in-one:1.73.0"
    assert plan["secrets"]["otel_token"] == "***"
    assert plan["profiles"]["tracing"]["secrets"] == {"otel_token": "***"}
    collector = _container(plan["machine"], "otel-collector")
    assert collector["env"] == {"OTEL_BEARER_TOKEN": "***"}
    api = plan["vercel"]["projects"]["agents-api"]["env"]
    assert api["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] == f"https://{HOSTNAME}:14318/v1/traces"
    assert api["OTEL_EXPORTER_OTLP_TRACES_HEADERS"] == "Authorization=Bearer%20***"
    assert api["OTEL_SERVICE_NAME"] == "agents-api"
    ui = plan["vercel"]["projects"]["manage-ui"]["env"]
    assert ui["OTEL_SERVICE_NAME"] == "manage-ui"
    assert plan["tunnels"]["jaeger"]["local_port"] == 16686
    assert plan["tunnels"]["jaeger"]["remote"].endswith(":16686")
    # the text plan says the same, and names no placeholder of a secret
    text = subprocess.run(
        [previewctl_executable(), "--config", str(CONFIG), "plan", "--profile", "tracing"],
        cwd=tmp_path,
        env=base_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert text.returncode == 0, text.stderr
    assert "container otel-collector: otel/opentelemetry-collector-contrib:0.135.0" in text.stdout
    assert "container jaeger: jaegertracing/all-in-one:1.73.0" in text.stdout
    assert "OTEL_EXPORTER_OTLP_TRACES_HEADERS=Authorization=Bearer%20***" in text.stdout
    assert "${secrets." not in text.stdout


def test_plan_without_a_profile_has_none_of_them(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    names = {c["name"] for c in plan["machine"]["containers"]}
    assert names == {"doltgres", "postgres", "spicedb"}
    assert "jaeger" not in plan["tunnels"]
    for project in plan["vercel"]["projects"].values():
        assert not [k for k in project["env"] if k.startswith(("OTEL_", "NANGO_", "SIGNOZ_"))]


@pytest.mark.parametrize(
    ("active", "memory_mb"),
    [((), 4096), (("tracing",), 5120), (("nango",), 6144), (("tracing", "nango"), 6144)],
    ids=["base", "tracing", "nango", "tracing+nango"],
)
def test_guest_memory(tmp_path: Path, active: tuple[str, ...], memory_mb: int) -> None:
    guest = _plan(tmp_path, *active)["machine"]["guest"]
    assert guest == {"cpu_kind": "shared", "cpus": 4, "memory_mb": memory_mb}
    need = CORE_MB
    need += (COLLECTOR_MB + JAEGER_MB) if "tracing" in active else 0
    need += NANGO_MB if "nango" in active else 0
    assert need <= memory_mb <= 2048 * guest["cpus"]  # within shared-cpu-4x's 8 GB


# ---- ports: one network namespace ----------------------------------------------------------


def _collector_config() -> dict[str, Any]:
    config = yaml.safe_load((PROFILES / "otel-collector.yaml").read_text())
    assert isinstance(config, dict)
    return config


def _listeners(profile: str) -> set[int]:
    """The ports the profile's containers listen on, read from their own configuration."""
    machine = _machine(profile)
    if profile == "tracing":
        config = _collector_config()
        protocols = config["receivers"]["otlp"]["protocols"]
        ports = {_port_of(p["endpoint"]) for p in protocols.values()}
        ports.add(_port_of(config["extensions"]["health_check"]["endpoint"]))
        env = _container(machine, "jaeger")["env"]
        ports |= {_port_of(env[k]) for k in env if k.endswith("_HOST_PORT")}
        return ports | JAEGER_LISTENERS
    assert profile == "nango"
    server = _container(machine, "nango-server")["env"]
    redis = _container(machine, "nango-redis")["cmd"]
    return {
        int(server["SERVER_PORT"]),
        int(server["NANGO_CONNECT_UI_PORT"]),
        int(_container(machine, "nango-db")["env"]["PGPORT"]),
        int(redis[redis.index("--port") + 1]),
    }


def _used_by_machine(machine: dict[str, Any]) -> set[int]:
    """Service internal ports and health-check ports of a machine config."""
    ports = {s["internal_port"] for s in machine.get("services", [])}
    for container in machine["containers"]:
        for check in container.get("healthchecks", []):
            ports |= {check[k]["port"] for k in ("tcp", "http") if k in check}
    return ports


def _base_ports() -> set[int]:
    machine = json.loads((ROOT / ".fly" / "machine-config.json").read_text())
    pgports = {int(c["env"]["PGPORT"]) for c in machine["containers"] if "PGPORT" in c["env"]}
    tunnels = {t["remote_port"] for t in _toml()["tunnels"].values()}
    return BASE_LISTENERS | pgports | tunnels | _used_by_machine(machine)


@pytest.mark.parametrize("profile", ["tracing", "nango"])
def test_a_profile_lists_exactly_the_ports_its_containers_listen_on(profile: str) -> None:
    declared = set(_toml()["profiles"][profile]["ports"])
    assert declared == _listeners(profile)
    assert _used_by_machine(_machine(profile)) <= declared
    tunnels = _toml()["profiles"][profile].get("tunnels", {})
    assert {t["remote_port"] for t in tunnels.values()} <= declared


def test_no_port_is_used_twice_and_the_otlp_defaults_are_free() -> None:
    base = _base_ports()
    tracing, nango = _listeners("tracing"), _listeners("nango")
    assert not base & tracing
    assert not base & nango
    assert not tracing & nango
    # the collector and Jaeger both default to 4317/4318: neither uses them here
    assert not {4317, 4318} & (tracing | nango | base)


def test_port_collisions_are_found_by_plan(tmp_path: Path) -> None:
    """The check the ports lists feed: a profile that took Doltgres' port is exit 2."""
    (tmp_path / ".fly" / "profiles").mkdir(parents=True)
    for name in ("machine-config.json", "profiles/tracing.json", "profiles/nango.json"):
        (tmp_path / ".fly" / name).write_text((ROOT / ".fly" / name).read_text())
    text = CONFIG.read_text().replace("ports = [3050, 3051, 5434, 6379]", "ports = [3050, 5432]")
    assert text != CONFIG.read_text()
    (tmp_path / "previewctl.toml").write_text(text)
    result = _run_plan(tmp_path, config=tmp_path / "previewctl.toml")
    assert result.returncode == 2
    assert "5432" in result.stderr


# ---- addresses Vercel gets: public https, never localhost or a tunnel ----------------------


@pytest.mark.parametrize("active", [("tracing",), ("nango",)], ids=["tracing", "nango"])
def test_vercel_urls_are_https_on_a_public_tls_http_service(
    tmp_path: Path, active: tuple[str, ...]
) -> None:
    plan = _plan(tmp_path, *active)
    public = {
        port["port"]: service["internal_port"]
        for service in plan["machine"]["services"]
        for port in service["ports"]
        if port.get("handlers") == ["tls", "http"]
    }
    added = plan["profiles"][active[0]]["vercel"]
    urls = 0
    for project, names in added.items():
        for name in names:
            value = plan["vercel"]["projects"][project]["env"][name]
            assert "localhost" not in value
            assert "127.0.0.1" not in value
            if "://" not in value:
                continue
            urls += 1
            scheme, rest = value.split("://", 1)
            assert scheme == "https", f"{project} {name}"
            host, port = rest.split("/", 1)[0].split(":")
            assert host == HOSTNAME, f"{project} {name}"
            assert int(port) in public, f"{project} {name}: port {port} is not public over TLS"
            assert public[int(port)] in _listeners(active[0])
    assert urls >= 2


def test_nango_tells_its_server_the_urls_the_browser_uses(tmp_path: Path) -> None:
    plan = _plan(tmp_path, "nango")
    server = _container(plan["machine"], "nango-server")["env"]
    ui = plan["vercel"]["projects"]["manage-ui"]["env"]
    api = plan["vercel"]["projects"]["agents-api"]["env"]
    assert server["NANGO_SERVER_URL"] == ui["PUBLIC_NANGO_SERVER_URL"] == api["NANGO_SERVER_URL"]
    assert server["NANGO_PUBLIC_CONNECT_URL"] == ui["PUBLIC_NANGO_CONNECT_BASE_URL"]
    assert server["NANGO_DB_PORT"] == _container(plan["machine"], "nango-db")["env"]["PGPORT"]
    assert server["RECORDS_DATABASE_URL"].startswith("postgresql://nango:***@127.0.0.1:5434/")
    assert server["NANGO_REDIS_URL"] == "redis://127.0.0.1:6379"
    # the API key the agents send is the one the server is given
    raw = _machine("nango")
    raw_server = _container(raw, "nango-server")["env"]
    nango_vars = _toml()["profiles"]["nango"]["vercel"]["projects"]
    assert raw_server["NANGO_SECRET_KEY_DEV"] == "${secrets.nango_secret_key}"
    for project in ("agents-api", "manage-ui"):
        assert nango_vars[project]["env"]["NANGO_SECRET_KEY"] == "${secrets.nango_secret_key}"


def test_nango_secrets_have_nangos_formats() -> None:
    formats = _toml()["secrets"]["format"]
    uuid = secretgen.generate(secretgen.SecretFormat(**formats["nango_secret_key"]))
    assert re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", uuid
    )
    key = secretgen.generate(secretgen.SecretFormat(**formats["nango_encryption_key"]))
    assert len(base64.b64decode(key, validate=True)) == 32  # `openssl rand -base64 32`
    assert set(_toml()["profiles"]["nango"]["secrets"]) >= {
        "nango_secret_key",
        "nango_encryption_key",
    }


# ---- the collector's config, delivered as a container file --------------------------------


def test_the_collector_config_file_is_the_readable_copy() -> None:
    collector = _container(_machine("tracing"), "otel-collector")
    (file,) = collector["files"]
    assert file["guest_path"] == "/etc/otelcol-contrib/config.yaml"  # the image's --config
    assert file["mode"] == 0o644
    shipped = (PROFILES / "otel-collector.yaml").read_bytes()
    assert base64.b64decode(file["raw_value"], validate=True) == shipped


def test_the_collector_accepts_exactly_the_token_agents_api_sends() -> None:
    """bearertokenauth compares the authorization header with "<scheme> <token>" (scheme
    Bearer by default); the SDK percent-decodes the OTLP headers var."""
    config = _collector_config()
    auth = config["extensions"]["bearertokenauth"]
    assert auth == {"token": "${env:OTEL_BEARER_TOKEN}"}
    for protocol in config["receivers"]["otlp"]["protocols"].values():
        assert protocol["auth"] == {"authenticator": "bearertokenauth"}
    assert "bearertokenauth" in config["service"]["extensions"]
    env = _container(_machine("tracing"), "otel-collector")["env"]
    assert env["OTEL_BEARER_TOKEN"] == "${secrets.otel_token}"
    token = secretgen.generate()
    tracing = _toml()["profiles"]["tracing"]["vercel"]["projects"]
    for project in ("agents-api", "manage-ui"):
        header = tracing[project]["env"]["OTEL_EXPORTER_OTLP_TRACES_HEADERS"]
        key, value = header.replace("${secrets.otel_token}", token).split("=", 1)
        assert (key.lower(), unquote(value)) == ("authorization", f"Bearer {token}")


def test_the_collector_hands_traces_to_jaeger_on_localhost() -> None:
    config = _collector_config()
    jaeger = _container(_machine("tracing"), "jaeger")["env"]
    exporter = config["exporters"]["otlp/jaeger"]
    assert exporter["endpoint"] == jaeger["COLLECTOR_OTLP_GRPC_HOST_PORT"] == "127.0.0.1:24317"
    assert config["service"]["pipelines"]["traces"]["exporters"] == ["otlp/jaeger"]
    assert jaeger["SPAN_STORAGE_TYPE"] == "memory"
    assert int(jaeger["MEMORY_MAX_TRACES"]) > 0  # capped: the guest has a fixed size


# ---- the workflow gives `up` what the profiles render ---------------------------------------


def _strings(data: Any) -> list[str]:
    if isinstance(data, dict):
        return [s for v in data.values() for s in _strings(v)]
    if isinstance(data, list):
        return [s for v in data for s in _strings(v)]
    return [data] if isinstance(data, str) else []


def test_every_env_value_the_config_names_reaches_up_in_the_workflow() -> None:
    strings = _strings(_toml())
    named = {n for s in strings for n in re.findall(r"\$\{env\.([A-Za-z_][A-Za-z0-9_]*)", s)}
    assert {"SIGNOZ_OTLP_TRACES_ENDPOINT", "SIGNOZ_URL", "SIGNOZ_API_KEY"} <= named
    # all optional (`:-`): a repository without them still gets a preview
    assert not [s for s in strings if re.search(r"\$\{env\.[A-Za-z0-9_]+\}", s)]
    for path in WORKFLOWS:
        steps = _jobs(path)["up"]["steps"]
        (up,) = [s for s in steps if s.get("id") == "up"]
        assert named <= set(up["env"]), path
