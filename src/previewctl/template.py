"""``${...}`` placeholders in config strings.

Grammar: ``$$`` is a literal ``$``; ``${a.b.c}`` is a reference made of dot-separated
names (``[A-Za-z0-9_-]+``); ``${env.NAME:-DEFAULT}`` renders DEFAULT (literal text, maybe
empty) when NAME is unset or empty. Which references a key may use is decided by the
caller (:data:`Scope`), so that, for example, a Vercel value can never name a tunnel.

A secret rendered inside a URL is percent-encoded there (see :func:`in_url`), so that a
generated value with symbols cannot change the URL's structure.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import quote

from previewctl import redact
from previewctl.suggest import closest

_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_DEFAULT_SEP = ":-"
# A URL scheme and `//` (RFC 3986 scheme syntax), anywhere in the word before a placeholder.
_URL_START = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# What ends the word a URL is part of: whitespace, and what RFC 3986 never allows
# unencoded in a URL (quotes, angle and curly brackets, `|`, backslash, backtick).
_WORD_END = re.compile(r"[\s\"'<>{}|\\`]")
# ${env.NAME} values that are secrets by their name (ANTHROPIC_API_KEY, a bypass token):
# scrubbed from output like generated ones, so `plan` shows them as ***.
_SECRET_ENV_NAME = re.compile(r"(?i)(KEY|TOKEN|SECRET|PASS|PWD|CREDENTIAL|PRIVATE)")


class Namespace(StrEnum):
    PR = "pr"
    BRANCH = "branch"
    APP = "app"
    SECRETS = "secrets"
    TUNNELS = "tunnels"
    VERCEL = "vercel"
    ENV = "env"


@dataclass(frozen=True)
class Ref:
    """One placeholder, e.g. ``tunnels.manage_db.port``; ``default`` is the text after
    ``:-`` (only ``${env.NAME:-DEFAULT}`` may have one; None = no default)."""

    parts: tuple[str, ...]
    default: str | None = None

    @property
    def namespace(self) -> str:
        return self.parts[0]

    def __str__(self) -> str:
        tail = "" if self.default is None else _DEFAULT_SEP + self.default
        return "${" + ".".join(self.parts) + tail + "}"


class TemplateError(ValueError):
    """A malformed or unknown placeholder; callers add file and key."""


def parse(text: str) -> list[str | Ref]:
    """Split ``text`` into literal strings and references."""
    out: list[str | Ref] = []
    buf: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "$":
            buf.append(ch)
            i += 1
            continue
        nxt = text[i + 1] if i + 1 < len(text) else ""
        if nxt == "$":
            buf.append("$")
            i += 2
            continue
        if nxt != "{":
            buf.append("$")
            i += 1
            continue
        end = text.find("}", i + 2)
        if end < 0:
            raise TemplateError(f"unterminated placeholder starting at {text[i : i + 20]!r}")
        body = text[i + 2 : end].strip()
        default: str | None = None
        if _DEFAULT_SEP in body:
            body, default = body.split(_DEFAULT_SEP, 1)
            body = body.strip()
            default = _literal_default(default)
        parts = tuple(body.split(".")) if body else ()
        if not parts or not all(_NAME.match(p) for p in parts):
            raise TemplateError(f"malformed placeholder ${{{text[i + 2 : end].strip()}}}")
        if buf:
            out.append("".join(buf))
            buf = []
        out.append(Ref(parts, default))
        i = end + 1
    if buf:
        out.append("".join(buf))
    return out


def _literal_default(text: str) -> str:
    """A default is literal text with the same escape as elsewhere (``$$`` is ``$``); a
    placeholder inside it is not expanded, so ``${env.A:-${secrets.b}}`` is an error, not
    the text ``${secrets.b}``."""
    if re.search(r"(?<!\$)(\$\$)*\$\{", text):
        raise TemplateError(
            "a default (after :-) is literal text and cannot hold another placeholder; "
            "write $${ for a literal ${"
        )
    return re.sub(r"\$\$", "$", text)


def refs(text: str) -> Iterator[Ref]:
    for piece in parse(text):
        if isinstance(piece, Ref):
            yield piece


@dataclass(frozen=True)
class Known:
    """The names a config defines, for static checks of references."""

    secrets: frozenset[str] = frozenset()
    tunnels: frozenset[str] = frozenset()
    vercel_projects: frozenset[str] = frozenset()


def _suggest(ref: Ref, index: int, candidates: Iterable[str]) -> str:
    """`` (did you mean ${...}?)`` with part ``index`` replaced by the closest candidate."""
    if index >= len(ref.parts):
        return ""
    best = closest(ref.parts[index], candidates)
    if best is None:
        return ""
    parts = list(ref.parts)
    parts[index] = best
    return f" (did you mean {Ref(tuple(parts))}?)"


_SHAPES: dict[Namespace, str] = {
    Namespace.PR: "${pr}",
    Namespace.BRANCH: "${branch}",
    Namespace.APP: "${app.name} or ${app.hostname}",
    Namespace.SECRETS: "${secrets.NAME}",
    Namespace.TUNNELS: "${tunnels.NAME.host} or ${tunnels.NAME.port}",
    Namespace.VERCEL: "${vercel.PROJECT.url}",
    Namespace.ENV: "${env.NAME}",
}


def _shape_problem(namespace: Namespace, ref: Ref) -> str | None:
    rest = ref.parts[1:]
    fields = {
        Namespace.APP: (1, 0, ("name", "hostname")),
        Namespace.TUNNELS: (2, 1, ("host", "port")),
        Namespace.VERCEL: (2, 1, ("url",)),
    }.get(namespace)
    if fields is None:
        want = {Namespace.PR: 0, Namespace.BRANCH: 0}.get(namespace, 1)
        return None if len(rest) == want else ""
    length, index, names = fields
    if len(rest) == length and rest[index] in names:
        return None
    return _suggest(ref, index + 1, names) if len(rest) == length else ""


def check_ref(ref: Ref, allowed: frozenset[Namespace], known: Known) -> None:
    """Raise :class:`TemplateError` when ``ref`` is unknown or not allowed here.

    The message names the closest known name, as a person would want to hear it.
    """
    ns, rest = ref.parts[0], ref.parts[1:]
    try:
        namespace = Namespace(ns)
    except ValueError:
        names = ", ".join(n.value for n in Namespace)
        hint = _suggest(ref, 0, [n.value for n in Namespace])
        raise TemplateError(f"unknown placeholder {ref}{hint}: namespaces are {names}") from None
    if namespace not in allowed:
        raise TemplateError(f"placeholder {ref} is not allowed here")
    if ref.default is not None and namespace is not Namespace.ENV:
        raise TemplateError(
            f"placeholder {ref}: only ${{env.NAME:-DEFAULT}} may have a default (:-)"
        )
    shape = _shape_problem(namespace, ref)
    if shape is not None:
        raise TemplateError(f"unknown placeholder {ref}{shape}: use {_SHAPES[namespace]}")
    if namespace is Namespace.SECRETS and rest[0] not in known.secrets:
        hint = _suggest(ref, 1, known.secrets)
        # a near miss may be a typo, or a new secret: say how to add one either way
        add = ", or add it to [secrets] generate" if hint else ": add it to [secrets] generate"
        raise TemplateError(f"unknown secret in {ref}{hint}{add}")
    if namespace is Namespace.TUNNELS and rest[0] not in known.tunnels:
        hint = _suggest(ref, 1, known.tunnels)
        raise TemplateError(f"unknown tunnel in {ref}{hint}: no [tunnels.{rest[0]}]")
    if namespace is Namespace.VERCEL and rest[0] not in known.vercel_projects:
        hint = _suggest(ref, 1, known.vercel_projects)
        raise TemplateError(
            f"unknown Vercel project in {ref}{hint}: no [vercel.projects.{rest[0]}]"
        )


def check(text: str, allowed: frozenset[Namespace], known: Known) -> list[Ref]:
    found = list(refs(text))
    for ref in found:
        check_ref(ref, allowed, known)
    return found


@dataclass(frozen=True)
class Values:
    """What placeholders resolve to at one moment of a run (built from the PreviewSpec;
    a later moment that knows more, such as the tunnels' ports, is a new Values).

    Missing entries (a tunnel not open yet, a deployment not known) raise
    :class:`TemplateError` unless the caller passes ``fallback``.
    """

    pr: int | None = None
    branch: str | None = None
    app_name: str | None = None
    app_hostname: str | None = None
    secrets: Mapping[str, str] = field(default_factory=dict)
    tunnels: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    vercel_urls: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)

    def lookup(self, ref: Ref) -> str | None:
        ns, rest = ref.parts[0], ref.parts[1:]
        if ns == "pr":
            return None if self.pr is None else str(self.pr)
        if ns == "branch":
            return self.branch
        if ns == "app":
            return self.app_name if rest[0] == "name" else self.app_hostname
        if ns == "secrets":
            return self.secrets.get(rest[0])
        if ns == "tunnels":
            tunnel = self.tunnels.get(rest[0])
            if tunnel is None:
                return None
            return tunnel[0] if rest[1] == "host" else str(tunnel[1])
        if ns == "vercel":
            return self.vercel_urls.get(rest[0])
        if ns == "env":
            return self.env.get(rest[0])
        return None


def in_url(before: str) -> bool:
    """True when a placeholder preceded by ``before`` (the text rendered so far) sits in a
    URL: the word it is part of holds ``scheme://``. A word ends at whitespace and at the
    characters a URL never holds unencoded (quotes, ``<>{}|\\`` and the backtick), so
    that in a compact JSON body ``{"cb":"https://h","key":"${secrets.k}"}`` the key is
    not taken for part of the URL before it.

    So ``postgresql://u:${secrets.p}@h/db``, ``https://h/x?key=${secrets.k}`` and
    ``DATABASE_URL=postgresql://u:${secrets.p}@h`` inside a ``run`` string are URL
    contexts; ``Bearer ${secrets.k}`` and a bare ``${secrets.k}`` are not.
    """
    word = _WORD_END.split(before)[-1]
    return _URL_START.search(word) is not None


def _secret_in_url(value: str) -> str:
    """Percent-encode every character outside RFC 3986's unreserved set (letters,
    digits, ``-._~``): safe in userinfo, a path segment and a query value alike. The
    mask ``plan`` shows stays the mask. The encoded form is a secret too."""
    if value == redact.MASK:
        return value
    encoded = quote(value, safe="")
    if encoded != value:
        redact.register(encoded)
    return encoded


def render(text: str, values: Values, *, fallback: Callable[[Ref], str] | None = None) -> str:
    """Substitute every reference; a result that embeds a secret becomes a secret too."""
    pieces: list[str] = []
    env_values: list[str] = []
    for piece in parse(text):
        if isinstance(piece, str):
            pieces.append(piece)
            continue
        value = values.lookup(piece)
        if piece.default is not None and not value:
            value = piece.default
        elif value and piece.namespace == Namespace.ENV and _SECRET_ENV_NAME.search(piece.parts[1]):
            redact.register(value)
        if value is None:
            if fallback is None:
                if piece.namespace == "env":
                    raise TemplateError(
                        f"{piece} is not set: export {piece.parts[1]} in the environment"
                    )
                raise TemplateError(f"{piece} has no value at this point")
            value = fallback(piece)
        elif piece.namespace == Namespace.SECRETS and in_url("".join(pieces)):
            value = _secret_in_url(value)
        elif piece.namespace == Namespace.ENV:
            env_values.append(value)
        pieces.append(value)
    result = "".join(pieces)
    redact.register_url_passwords(result, env_values)
    redact.register_if_contains_secret(result)
    return result


def render_tree(
    obj: object, values: Values, *, fallback: Callable[[Ref], str] | None = None
) -> object:
    """Render every string inside a JSON-like structure (keys stay as they are)."""
    if isinstance(obj, str):
        return render(obj, values, fallback=fallback)
    if isinstance(obj, list):
        return [render_tree(v, values, fallback=fallback) for v in obj]
    if isinstance(obj, dict):
        return {k: render_tree(v, values, fallback=fallback) for k, v in obj.items()}
    return obj


def strings_in(obj: object, path: str = "") -> Iterator[tuple[str, str]]:
    """Yield (json-path, string) for every string value in a JSON-like structure."""
    if isinstance(obj, str):
        yield path, obj
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from strings_in(v, f"{path}[{i}]")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from strings_in(v, f"{path}.{k}" if path else str(k))


def name_pattern(template: str) -> re.Pattern[str]:
    """A regex matching names made from ``template``; group ``pr`` holds the number."""
    out = []
    for piece in parse(template):
        if isinstance(piece, str):
            out.append(re.escape(piece))
        elif piece.parts == ("pr",):
            out.append(r"(?P<pr>[1-9][0-9]{0,9})")
        else:
            raise TemplateError(f"{piece} cannot be used in the app name; only ${{pr}}")
    # \Z, not $: "$" also matches before a trailing newline ("pr-8-agents\n")
    return re.compile("^" + "".join(out) + r"\Z")
