"""Placeholders: parsing, static checks, rendering and the app-name pattern."""

from __future__ import annotations

import dataclasses

import pytest

from previewctl import redact, template
from previewctl.template import Known, Namespace, Ref, TemplateError, Values

ALL = frozenset(Namespace)
KNOWN = Known(
    secrets=frozenset({"pg_password", "api_key"}),
    tunnels=frozenset({"db"}),
    vercel_projects=frozenset({"api"}),
)


def full_values() -> Values:
    return Values(
        pr=12,
        branch="feature/x",
        app_name="pr-12-agents",
        app_hostname="pr-12-agents.fly.dev",
        secrets={"pg_password": "s3cret-pass-value"},
        tunnels={"db": ("127.0.0.1", 15432)},
        vercel_urls={"api": "https://pr-12-api.example.com"},
        env={"REGION": "iad"},
    )


# ---- parse ------------------------------------------------------------------------------
def test_parse_splits_literals_and_refs() -> None:
    assert template.parse("a-${pr}-b") == ["a-", Ref(("pr",)), "-b"]
    assert template.parse("${tunnels.db.port}") == [Ref(("tunnels", "db", "port"))]
    assert template.parse("") == []
    assert template.parse("plain") == ["plain"]


def test_parse_double_dollar_is_a_literal_dollar() -> None:
    assert template.parse("cost $$5") == ["cost $5"]
    # `$${pr}` is a literal `$` followed by the text `{pr}`, not a reference
    assert template.parse("$${pr}") == ["${pr}"]
    assert template.parse("$$$${pr}") == ["$${pr}"]


def test_parse_lone_dollar_stays_literal() -> None:
    assert template.parse("$HOME and $") == ["$HOME and $"]


def test_parse_adjacent_refs_and_whitespace_inside_braces() -> None:
    assert template.parse("${pr}${branch}") == [Ref(("pr",)), Ref(("branch",))]
    assert template.parse("${ pr }") == [Ref(("pr",))]


def test_ref_str_and_namespace() -> None:
    ref = Ref(("tunnels", "db", "host"))
    assert str(ref) == "${tunnels.db.host}"
    assert ref.namespace == "tunnels"


def test_parse_unterminated_placeholder() -> None:
    with pytest.raises(TemplateError, match="unterminated"):
        template.parse("postgres://${secrets.pg_password@host")


@pytest.mark.parametrize(
    "text", ["${}", "${ }", "${a..b}", "${.a}", "${a.}", "${a b}", "${a/b}", "${a{b}", "${é}"]
)
def test_parse_malformed_names(text: str) -> None:
    with pytest.raises(TemplateError, match="malformed placeholder"):
        template.parse(text)


def test_refs_yields_only_references() -> None:
    assert [str(r) for r in template.refs("x${pr}y$${z}${env.A}")] == ["${pr}", "${env.A}"]


# ---- check ------------------------------------------------------------------------------
def test_check_accepts_every_known_shape() -> None:
    text = (
        "${pr} ${branch} ${app.name} ${app.hostname} ${secrets.pg_password} "
        "${tunnels.db.host} ${tunnels.db.port} ${vercel.api.url} ${env.ANYTHING}"
    )
    found = template.check(text, ALL, KNOWN)
    assert len(found) == 9


def test_check_unknown_namespace_lists_the_namespaces() -> None:
    with pytest.raises(TemplateError) as info:
        template.check("${github.sha}", ALL, KNOWN)
    message = str(info.value)
    assert "unknown placeholder ${github.sha}" in message
    for ns in ("pr", "branch", "app", "secrets", "tunnels", "vercel", "env"):
        assert ns in message


def test_check_namespace_not_allowed_here() -> None:
    allowed = frozenset({Namespace.PR, Namespace.SECRETS})
    with pytest.raises(TemplateError, match=r"\$\{tunnels\.db\.port\} is not allowed here"):
        template.check("x:${tunnels.db.port}", allowed, KNOWN)
    assert template.check("${secrets.api_key}", allowed, KNOWN) == [Ref(("secrets", "api_key"))]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("${secrets.nope}", r"unknown secret in \$\{secrets\.nope\}: add it to \[secrets\]"),
        ("${tunnels.cache.port}", r"unknown tunnel .*no \[tunnels\.cache\]"),
        ("${vercel.web.url}", r"unknown Vercel project .*no \[vercel\.projects\.web\]"),
    ],
)
def test_check_unknown_names(text: str, match: str) -> None:
    with pytest.raises(TemplateError, match=match):
        template.check(text, ALL, KNOWN)


@pytest.mark.parametrize(
    "text",
    [
        "${app.foo}",
        "${app}",
        "${app.name.x}",
        "${tunnels.db.url}",
        "${tunnels.db}",
        "${vercel.api}",
        "${vercel.api.domain}",
        "${secrets}",
        "${secrets.a.b}",
        "${pr.number}",
        "${branch.name}",
        "${env}",
        "${env.A.B}",
    ],
)
def test_check_shape_errors(text: str) -> None:
    with pytest.raises(TemplateError, match=r"unknown placeholder \$\{"):
        template.check(text, ALL, KNOWN)


def test_check_reports_the_first_bad_ref_in_a_string() -> None:
    with pytest.raises(TemplateError, match=r"secrets\.missing"):
        template.check("${pr}-${secrets.missing}-${app.bad}", ALL, KNOWN)


# ---- render -----------------------------------------------------------------------------
def test_render_every_namespace() -> None:
    values = full_values()
    assert template.render("${pr}", values) == "12"
    assert template.render("${branch}", values) == "feature/x"
    assert template.render("${app.name}", values) == "pr-12-agents"
    assert template.render("${app.hostname}", values) == "pr-12-agents.fly.dev"
    assert template.render("${secrets.pg_password}", values) == "s3cret-pass-value"
    assert template.render("${tunnels.db.host}:${tunnels.db.port}", values) == "127.0.0.1:15432"
    assert template.render("${vercel.api.url}/x", values) == "https://pr-12-api.example.com/x"
    assert template.render("${env.REGION}", values) == "iad"
    assert template.render("$$${pr}$$", values) == "$12$"


def test_render_missing_env_names_the_variable() -> None:
    with pytest.raises(TemplateError, match="export DATABASE_HOST in the environment"):
        template.render("h=${env.DATABASE_HOST}", Values(env={"OTHER": "x"}))


@pytest.mark.parametrize(
    "text",
    [
        "${pr}",
        "${branch}",
        "${app.name}",
        "${app.hostname}",
        "${secrets.x}",
        "${tunnels.db.port}",
        "${vercel.api.url}",
    ],
)
def test_render_missing_value_is_an_error(text: str) -> None:
    with pytest.raises(TemplateError, match="has no value at this point"):
        template.render(text, Values())


def test_render_fallback_fills_missing_values_only() -> None:
    seen: list[Ref] = []

    def fallback(ref: Ref) -> str:
        seen.append(ref)
        return f"<{'.'.join(ref.parts)}>"

    out = template.render("${pr}:${tunnels.db.port}:${env.NOPE}", Values(pr=7), fallback=fallback)
    assert out == "7:<tunnels.db.port>:<env.NOPE>"
    assert seen == [Ref(("tunnels", "db", "port")), Ref(("env", "NOPE"))]


def test_render_tree_renders_strings_and_keeps_keys_and_other_types() -> None:
    tree = {
        "${pr}": "name-${pr}",
        "n": 5,
        "flag": True,
        "none": None,
        "list": ["${app.name}", 1, {"deep": "${secrets.pg_password}"}],
    }
    out = template.render_tree(tree, full_values())
    assert out == {
        "${pr}": "name-12",
        "n": 5,
        "flag": True,
        "none": None,
        "list": ["pr-12-agents", 1, {"deep": "s3cret-pass-value"}],
    }
    # the input is not modified
    assert tree["list"][0] == "${app.name}"  # type: ignore[index]


def test_render_tree_propagates_errors() -> None:
    with pytest.raises(TemplateError):
        template.render_tree({"a": ["${env.MISSING}"]}, Values())


def test_strings_in_yields_json_paths() -> None:
    tree = {"containers": [{"env": {"A": "x"}, "cmd": ["serve", 1]}], "n": 2}
    assert list(template.strings_in(tree)) == [
        ("containers[0].env.A", "x"),
        ("containers[0].cmd[0]", "serve"),
    ]


def test_rendered_value_embedding_a_secret_becomes_a_secret() -> None:
    password = "s3cret-pass-value"
    redact.register(password)
    url = template.render(
        "postgresql://appuser:${secrets.pg_password}@${tunnels.db.host}:${tunnels.db.port}/db",
        full_values(),
    )
    assert url == "postgresql://appuser:s3cret-pass-value@127.0.0.1:15432/db"
    assert redact.scrub(url) == "***"
    assert redact.scrub(f"connecting to {url} now") == "connecting to *** now"


def test_rendered_value_without_a_secret_stays_visible() -> None:
    redact.register("s3cret-pass-value")
    out = template.render("https://${app.hostname}", full_values())
    assert redact.scrub(out) == "https://pr-12-agents.fly.dev"


# ---- name_pattern -----------------------------------------------------------------------
def test_name_pattern_matches_only_names_from_the_template() -> None:
    pattern = template.name_pattern("pr-${pr}-agents")
    match = pattern.match("pr-12-agents")
    assert match is not None
    assert match.group("pr") == "12"
    for name in ("pr-012-agents", "xpr-1-agents", "pr-1-agents-old", "pr--agents", "pr-0-agents"):
        assert pattern.match(name) is None, name


def test_name_pattern_escapes_literal_parts() -> None:
    pattern = template.name_pattern("a.b-${pr}")
    assert pattern.match("a.b-3") is not None
    assert pattern.match("aXb-3") is None


def test_name_pattern_rejects_other_placeholders() -> None:
    with pytest.raises(TemplateError, match=r"only \$\{pr\}"):
        template.name_pattern("pr-${pr}-${branch}")


# ---- ${env.NAME:-DEFAULT} ---------------------------------------------------------------
def test_parse_env_default() -> None:
    assert template.parse("${env.KEY:-}") == [Ref(("env", "KEY"), "")]
    assert template.parse("${env.LEVEL:-info}") == [Ref(("env", "LEVEL"), "info")]
    # the default is literal text up to the brace: URLs and colons are fine
    assert template.parse("${env.U:-https://x.example.com:8443/a}") == [
        Ref(("env", "U"), "https://x.example.com:8443/a")
    ]
    assert str(Ref(("env", "LEVEL"), "info")) == "${env.LEVEL:-info}"
    assert str(Ref(("env", "KEY"), "")) == "${env.KEY:-}"


@pytest.mark.parametrize("text", ["${:-x}", "${env.:-x}", "${env.a b:-x}"])
def test_parse_malformed_default(text: str) -> None:
    with pytest.raises(TemplateError, match="malformed placeholder"):
        template.parse(text)


def test_render_env_default_when_unset_or_empty() -> None:
    assert template.render("k=${env.KEY:-}", Values(env={})) == "k="
    assert template.render("${env.LEVEL:-info}", Values(env={})) == "info"
    # as GitHub Actions passes a secret that does not exist: set, but empty
    assert template.render("${env.LEVEL:-info}", Values(env={"LEVEL": ""})) == "info"
    assert template.render("${env.LEVEL:-info}", Values(env={"LEVEL": "debug"})) == "debug"


def test_render_plain_env_unset_is_still_an_error() -> None:
    with pytest.raises(TemplateError, match="export KEY in the environment"):
        template.render("${env.KEY}", Values(env={}))


def test_a_default_never_reaches_the_fallback() -> None:
    def fallback(ref: Ref) -> str:
        raise AssertionError(f"fallback called for {ref}")

    assert template.render("${env.KEY:-dflt}", Values(), fallback=fallback) == "dflt"


def test_only_env_placeholders_may_have_a_default() -> None:
    template.check("${env.KEY:-}", ALL, KNOWN)
    for text in ("${pr:-1}", "${secrets.pg_password:-x}", "${tunnels.db.port:-5432}"):
        with pytest.raises(TemplateError, match=r"only \$\{env\.NAME:-DEFAULT\}"):
            template.check(text, ALL, KNOWN)


# ---- secrets inside URLs ----------------------------------------------------------------
SYMBOLIC = "Ab1!#%*+-.:=?@^_~x"


def symbolic_values() -> Values:
    return dataclasses.replace(full_values(), secrets={"pg_password": SYMBOLIC})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "postgresql://appuser:${secrets.pg_password}@h:5432/db",
            "postgresql://appuser:Ab1%21%23%25%2A%2B-.%3A%3D%3F%40%5E_~x@h:5432/db",
        ),
        (
            "https://h/p/${secrets.pg_password}",
            "https://h/p/Ab1%21%23%25%2A%2B-.%3A%3D%3F%40%5E_~x",
        ),
        (
            "${vercel.api.url}/x?key=${secrets.pg_password}&a=1",
            "https://pr-12-api.example.com/x?key=Ab1%21%23%25%2A%2B-.%3A%3D%3F%40%5E_~x&a=1",
        ),
        # a URL inside a `run` string or a KEY=VALUE word
        (
            "psql DATABASE_URL=postgresql://u:${secrets.pg_password}@h/db -c 1",
            "psql DATABASE_URL=postgresql://u:Ab1%21%23%25%2A%2B-.%3A%3D%3F%40%5E_~x@h/db -c 1",
        ),
    ],
)
def test_a_secret_inside_a_url_is_percent_encoded(text: str, expected: str) -> None:
    assert template.render(text, symbolic_values()) == expected


@pytest.mark.parametrize(
    "text",
    [
        "${secrets.pg_password}",
        "Bearer ${secrets.pg_password}",
        "https://h/x ${secrets.pg_password}",  # a new word: not in the URL
        "user:${secrets.pg_password}@host",  # no scheme: not a URL
    ],
)
def test_a_secret_outside_a_url_is_verbatim(text: str) -> None:
    rendered = template.render(text, symbolic_values())
    assert SYMBOLIC in rendered


def test_a_url_safe_secret_is_unchanged_and_the_encoded_form_is_redacted() -> None:
    assert template.render("pg://u:${secrets.pg_password}@h", full_values()) == (
        "pg://u:s3cret-pass-value@h"
    )
    redact.register(SYMBOLIC)
    url = template.render("pg://u:${secrets.pg_password}@h/db", symbolic_values())
    encoded = url.removeprefix("pg://u:").removesuffix("@h/db")
    assert encoded != SYMBOLIC
    assert redact.scrub(f"failed: {encoded}") == "failed: ***"
    assert redact.scrub(url) == "***"


def test_the_mask_plan_shows_stays_the_mask_in_a_url() -> None:
    values = dataclasses.replace(full_values(), secrets={"pg_password": redact.MASK})
    assert template.render("pg://u:${secrets.pg_password}@h", values) == "pg://u:***@h"


def test_in_url_decides_on_the_word_before_the_placeholder() -> None:
    assert template.in_url("postgresql://u:")
    assert template.in_url("x --url=https://h/")
    assert not template.in_url("https://h/ ")
    assert not template.in_url("Bearer ")
    assert not template.in_url("")


def test_an_env_value_named_like_a_secret_is_scrubbed_from_output() -> None:
    key = "sk-ant-" + "q" * 24
    values = Values(env={"ANTHROPIC_API_KEY": key, "LOG_LEVEL": "debug"})
    assert template.render("${env.ANTHROPIC_API_KEY:-}", values) == key
    assert template.render("${env.LOG_LEVEL}", values) == "debug"
    assert redact.scrub(f"A={key} L=debug") == "A=*** L=debug"
