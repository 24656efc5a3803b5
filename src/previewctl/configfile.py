"""Reading config files, and saying where in them a problem is (file, key, line)."""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Discriminator, Tag, ValidationError

from previewctl.errors import ConfigError, Problems


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


def validation_problems(
    exc: ValidationError,
    file: str,
    text: str | None,
    problems: Problems,
    root: type[BaseModel] | None = None,
) -> None:
    """One ConfigError per pydantic error, with the key and (in previewctl.toml) the line.

    ``root``: the validated model, whose tagged unions' tags are taken out of the keys.
    """
    for err in exc.errors():
        loc = loc_to_path(err["loc"])
        if root is not None:
            loc = without_tags(root, loc)
        msg = err["msg"].removeprefix("Value error, ")  # pydantic's wrapper says nothing
        if err["type"] == "extra_forbidden":
            msg = f"unknown key {loc[-1]!r}"
        elif err["type"] == "missing":
            msg = "required key is missing"
        line = line_of(text, loc) if text is not None else None
        problems.add(ConfigError(msg, file=file, key=format_key(loc) or None, line=line))
