"""Reading config files, and saying where in them a problem is (file, key, line), as a
person would write it.

TOML: the line of a key (its table header, the right one of a ``[[...]]`` array, then
the key inside). JSON (the machine config): the line of the value at a path, found by a
small position-tracking walk over the already valid text.
"""

from __future__ import annotations

import json
import re
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Discriminator, Tag, ValidationError

from previewctl.errors import ConfigError, Problems
from previewctl.suggest import closest


def read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} is not UTF-8 text ({exc.reason})", file=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what}: {exc.strerror}", file=str(path)) from None


_HEADER_RE = re.compile(r"^\s*(\[\[?)([^\[\]]+)(\]\]?)\s*(#.*)?$")


def header_of(line: str) -> tuple[tuple[str, ...], bool] | None:
    """(dotted names, is an array of tables) when ``line`` is a table header."""
    match = _HEADER_RE.match(line)
    if match is None or len(match.group(1)) != len(match.group(3)):
        return None
    names = tuple(p.strip().strip("\"'") for p in match.group(2).split("."))
    return names, match.group(1) == "[["


def key_path(key: str) -> list[str]:
    """``steps[1].env.A`` -> ``["steps", "1", "env", "A"]`` (the form of pydantic's loc)."""
    out: list[str] = []
    for part in key.split("."):
        name, *indices = part.replace("]", "").split("[")
        out.append(name)
        out.extend(indices)
    return out


def line_of(text: str, path: list[str]) -> int | None:
    """Best-effort line of a key: its table header (the right one of a ``[[...]]``
    array), then the last name of the path inside that table."""
    names: list[str] = []
    index: list[int | None] = []
    for part in path:
        if part.isdigit() and names:
            index[-1] = int(part)
        else:
            names.append(part)
            index.append(None)
    if not names:
        return None
    lines = text.splitlines()
    headers = [(i, header_of(line)) for i, line in enumerate(lines)]
    start, stop, rest = 0, len(lines), names
    for n in range(len(names), 0, -1):
        wanted = tuple(names[:n])
        occurrence = index[n - 1]
        found = [
            i
            for i, h in headers
            if h is not None and h[0] == wanted and h[1] == (occurrence is not None)
        ]
        if occurrence is not None:
            found = found[occurrence : occurrence + 1]
        if found:
            start = found[0]
            stop = next((i for i, h in headers if i > start and h is not None), len(lines))
            rest = names[n:]
            if not rest:
                return start + 1
            break
    key = re.compile(r'(^|[\s{,])["\']?' + re.escape(rest[-1]) + r'["\']?\s*=')
    for i in range(start, stop):
        if headers[i][1] is None and key.search(lines[i]):
            return i + 1
    return start + 1 if rest is not names else None


def loc_to_path(loc: tuple[int | str, ...]) -> list[str]:
    return [str(p) for p in loc]


def format_key(loc: list[str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out


def _tagged_members(annotation: Any) -> dict[str, Any] | None:
    """A tagged union's members by tag (``Annotated[A | B, Discriminator(...)]``)."""
    if typing.get_origin(annotation) is not typing.Annotated:
        return None
    union, *extras = typing.get_args(annotation)
    if not any(isinstance(extra, Discriminator) for extra in extras):
        return None
    members: dict[str, Any] = {}
    for member in typing.get_args(union):
        if typing.get_origin(member) is typing.Annotated:
            inner, *marks = typing.get_args(member)
            members.update((m.tag, inner) for m in marks if isinstance(m, Tag))
    return members


def _child(annotation: Any, part: str) -> Any:
    """The annotation one step down ``loc`` (a field, a list item, a dict value)."""
    while typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) != 1:
            return None
        annotation = args[0]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        field = annotation.model_fields.get(part)
        return field.annotation if field is not None else None
    if typing.get_origin(annotation) in (list, dict):
        return typing.get_args(annotation)[-1]
    return None


def without_tags(root: type[BaseModel], loc: list[str]) -> list[str]:
    """``loc`` without the tags pydantic puts in it for a tagged union (``steps.0.run.env``
    -> ``steps.0.env``): a tag names the kind of a step, not a key of the file."""
    out: list[str] = []
    current: Any = root
    for part in loc:
        members = _tagged_members(current)
        if members is not None and part in members:
            current = members[part]
            continue
        out.append(part)
        current = _child(current, part)
    return out


_UNION_TAG = re.compile(r"^(str|int|float|bool|none)$|\[")
_LIBRARY_PREFIXES = ("Value error, ", "Assertion failed, ")


def _model_at(root: type[BaseModel] | None, tagged: list[str]) -> type[BaseModel] | None:
    """The model whose keys are allowed at ``tagged`` (a parent's loc, tags included)."""
    current: Any = root
    for part in tagged:
        members = _tagged_members(current)
        if members is not None and part in members:
            current = members[part]
            continue
        current = _child(current, part)
        if current is None:
            return None
    while typing.get_origin(current) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(current) if a is not type(None)]
        current = args[0] if len(args) == 1 else None
    if isinstance(current, type) and issubclass(current, BaseModel):
        return current
    return None


def _message(err: Any, tagged: list[str], root: type[BaseModel] | None) -> str:
    """One problem as a person would write it: no library prefixes, a suggestion."""
    kind, msg = err["type"], str(err["msg"])
    for prefix in _LIBRARY_PREFIXES:
        msg = msg.removeprefix(prefix)
    if kind == "extra_forbidden":
        model = _model_at(root, tagged[:-1])
        best = closest(tagged[-1], model.model_fields) if model is not None else None
        return f"unknown key {tagged[-1]!r}" + (f" (did you mean {best!r}?)" if best else "")
    if kind == "missing":
        return "required key is missing"
    if kind == "literal_error":
        expected = re.findall(r"'([^']*)'", str((err.get("ctx") or {}).get("expected", "")))
        best = closest(err.get("input"), expected)
        return msg + (f" (did you mean {best!r}?)" if best else "")
    return msg


def validation_problems(
    exc: ValidationError,
    file: str,
    text: str | None,
    problems: Problems,
    root: type[BaseModel] | None = None,
    *,
    find_line: Callable[[str], int | None] | None = None,
) -> None:
    """One ConfigError per problem pydantic found, with the key and the line: in
    previewctl.toml by default, else by ``find_line(key)`` (the machine config's JSON).

    ``root``: the validated model, whose tagged unions' tags are taken out of the keys.
    Worded as a person would: no library prefixes, one problem for a value that fits
    none of a union's types, and the closest known name for an unknown key or choice.
    """
    seen: dict[tuple[str, ...], list[str]] = {}
    for err in exc.errors():
        tagged = loc_to_path(err["loc"])
        loc = without_tags(root, tagged) if root is not None else list(tagged)
        while loc and _UNION_TAG.search(loc[-1]):  # `run = 5`: one problem, not one per type
            loc.pop()
        message = _message(err, tagged, root)
        messages = seen.setdefault(tuple(loc), [])
        if message not in messages:
            messages.append(message)
    for loc_key, messages in seen.items():
        if len(messages) > 1 and all(m.startswith("Input should be ") for m in messages):
            messages = ["Input should be " + " or ".join(m[16:] for m in messages)]
        loc = list(loc_key)
        key = format_key(loc)
        if find_line is not None:
            line = find_line(key)
        else:
            line = line_of(text, loc) if text is not None else None
        for message in messages:
            problems.add(ConfigError(message, file=file, key=key or None, line=line))


_WS = re.compile(r"\s*")
_DECODER = json.JSONDecoder()


def _json_positions(text: str) -> dict[str, int]:
    """Offset of every value in valid JSON ``text``, by path (``containers[0].env.X``)."""
    out: dict[str, int] = {}

    def skip(i: int) -> int:
        found = _WS.match(text, i)
        return found.end() if found else i

    def value(i: int, path: str) -> int:
        i = skip(i)
        out[path] = i
        if text[i] not in "{[":
            return int(_DECODER.raw_decode(text, i)[1])
        closing = "}" if text[i] == "{" else "]"
        i, index = skip(i + 1), 0
        while text[i] != closing:
            if closing == "}":
                key, i = _DECODER.raw_decode(text, i)
                i = skip(i) + 1  # the ':'
                i = value(i, f"{path}.{key}" if path else str(key))
            else:
                i = value(i, f"{path}[{index}]")
                index += 1
            i = skip(i)
            if text[i] == ",":
                i = skip(i + 1)
        return i + 1

    value(0, "")
    return out


def json_line(text: str, path: str) -> int | None:
    """The line of the value at ``path`` in the machine config (None if not found)."""
    try:
        positions = _json_positions(text)
    except (ValueError, IndexError, RecursionError):
        return None
    while path:
        if path in positions:
            return text.count("\n", 0, positions[path]) + 1
        parent = re.sub(r"(\.[^.\[]*|\[\d+\])$", "", path)  # the nearest parent then
        path = "" if parent == path else parent
    return None
