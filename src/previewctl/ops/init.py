"""`init`: write a starting set-up into a repository, from templates shipped in the package.

The `agents` template is the shipped default: this repository's own previewctl.toml,
.fly/machine-config.json and .fly/profiles/ (a test keeps them byte-for-byte equal). The
two workflows use the composite action.
"""

from __future__ import annotations

import contextlib
import os
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from previewctl.backends import platform
from previewctl.errors import InputError, PreviewctlError

TEMPLATES = ("agents", "postgres")
DEFAULT_ACTION = "OWNER/previewctl@v0"
_ACTION_PLACEHOLDER = "OWNER/previewctl@v0"

# (path in the package's templates/, path written in the repository)
_CONFIG_FILES = (
    ("{template}/previewctl.toml", "previewctl.toml"),
    ("{template}/machine-config.json", ".fly/machine-config.json"),
)
# The machine files of a template's [profiles] (and what they carry, readable).
_PROFILE_FILES: dict[str, tuple[tuple[str, str], ...]] = {
    "agents": tuple(
        (f"agents/profiles/{name}", f".fly/profiles/{name}")
        for name in ("tracing.json", "otel-collector.yaml", "nango.json")
    ),
}
_WORKFLOWS = (
    ("workflows/preview.yml", ".github/workflows/preview.yml"),
    ("workflows/preview-gc.yml", ".github/workflows/preview-gc.yml"),
)


@dataclass
class InitResult:
    template: str
    root: Path
    written: list[str] = field(default_factory=list)
    next_steps: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "template": self.template,
            "dir": str(self.root),
            "written": self.written,
            "next_steps": self.next_steps,
        }


def template_text(name: str) -> str:
    """A file of the shipped templates (``agents/previewctl.toml``, ``workflows/...``)."""
    return resources.files("previewctl").joinpath("templates", *name.split("/")).read_text("utf-8")


def template_files(template: str, action: str = DEFAULT_ACTION) -> dict[str, str]:
    """Repository path -> content, for one template."""
    if template not in TEMPLATES:
        raise InputError(f"unknown template {template!r}: choose one of {', '.join(TEMPLATES)}")
    files = {dest: template_text(src.format(template=template)) for src, dest in _CONFIG_FILES}
    files.update({dest: template_text(src) for src, dest in _PROFILE_FILES.get(template, ())})
    for src, dest in _WORKFLOWS:
        files[dest] = template_text(src).replace(_ACTION_PLACEHOLDER, action)
    return files


# OWNER/REPO[/PATH]@REF in the characters GitHub allows there: the value lands unquoted
# in the workflows' `uses:`, where a YAML indicator (`*`, `&`, `!`, `{`, a trailing `:`)
# or an expression would break or change them.
_ACTION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_.-]+)+@[A-Za-z0-9_.+/-]+")
_TMP_SUFFIX = ".previewctl-init.tmp"


def _check_action(action: str) -> None:
    if not _ACTION_RE.fullmatch(action):
        raise InputError(
            f"--action must look like OWNER/REPO@REF (letters, digits and - _ . / only), "
            f"got {action!r}; nothing was written"
        )


def _check_root(root: Path) -> None:
    for path in (root, *root.parents):
        if path.is_dir():
            return
        if path.exists() or path.is_symlink():
            raise InputError(f"{path} is not a directory; nothing was written")


def _problems(root: Path, dest: str) -> tuple[list[str], bool]:
    """What stops ``dest`` being written into ``root``, and whether something is there."""
    real_root = root.resolve()
    path = root
    for name in dest.split("/")[:-1]:
        path = path / name
        if path.is_symlink() and not path.resolve().is_relative_to(real_root):
            return [f"{path.relative_to(root)} is a symlink to outside {root}"], False
        if (path.exists() or path.is_symlink()) and not path.is_dir():
            return [f"{path.relative_to(root)} is not a directory"], False
    path = root / dest
    if path.is_dir() and not path.is_symlink():
        return [f"{dest} is a directory"], False
    return [], os.path.lexists(path)


def _mkdirs(path: Path) -> list[Path]:
    """Create ``path`` and its missing parents; the ones created, outermost first."""
    missing: list[Path] = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    made: list[Path] = []
    for directory in reversed(missing):
        directory.mkdir()
        made.append(directory)
    return made


def _write_all(root: Path, files: dict[str, str]) -> None:
    """All files or none: each goes to a temporary file beside it, then all are moved in."""
    made: list[Path] = []
    temps: dict[Path, Path] = {}
    dest = ""
    try:
        for dest, text in files.items():
            path = root / dest
            made += _mkdirs(path.parent)
            temps[path] = path.with_name(f".{path.name}{_TMP_SUFFIX}")
            temps[path].write_text(text, encoding="utf-8")
    except OSError as exc:
        for tmp in temps.values():
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
        for directory in reversed(made):
            with contextlib.suppress(OSError):
                directory.rmdir()
        reason = exc.strerror or str(exc)
        raise PreviewctlError(f"could not write {dest}: {reason}; nothing was written") from None
    for path, tmp in temps.items():
        # A hard link or symlink in the way is replaced, never written through.
        os.replace(tmp, path)


def run_init(root: Path, template: str, *, force: bool, action: str) -> InitResult:
    _check_action(action)
    files = template_files(template, action)
    _check_root(root)
    problems: list[str] = []
    existing: list[str] = []
    for dest in files:
        found, there = _problems(root, dest)
        problems += found
        existing += [dest] if there else []
    if problems:
        raise InputError("; ".join(dict.fromkeys(problems)) + "; nothing was written")
    if existing and not force:
        raise InputError(
            "these files exist already: " + ", ".join(sorted(existing)) + "; nothing was written",
            hint="pass --force to overwrite them",
        )
    _write_all(root, files)
    result = InitResult(template, root, written=list(files))
    result.next_steps = next_steps(files["previewctl.toml"], action)
    return result


def next_steps(config_text: str, action: str) -> list[str]:
    """What is left to do: secrets to add and the values that are only examples."""
    data = tomllib.loads(config_text)
    org = data["app"]["org"]
    projects = sorted((data.get("vercel") or {}).get("projects") or {})
    steps = [platform().credentials_step(org)]
    if projects:
        steps.append(
            "add the repository secret VERCEL_TOKEN (a token that can read and "
            "write the projects' env vars and domains)"
        )
    steps.append(f'in previewctl.toml set [app] org (now "{org}") to your Fly organization')
    if projects:
        domains = [str(p["domain"]) for p in data["vercel"]["projects"].values() if p.get("domain")]
        steps.append(
            "name your Vercel project(s) in [vercel.projects.*] (now "
            + ", ".join(projects)
            + "), set [vercel] team_id when they belong to a team"
            + (", and use a domain of your team for " + ", ".join(domains) if domains else "")
        )
    steps.append("adapt [[steps]] (migrations) and .fly/machine-config.json to your stack")
    if action == DEFAULT_ACTION:
        steps.append(
            f"in the workflows, replace {DEFAULT_ACTION} with the repository and ref you take "
            "previewctl from (pin a commit SHA: zizmor flags a tag), or rerun init with --action"
        )
    steps.append("check it: `previewctl plan`, then `previewctl doctor` with the tokens exported")
    return steps


def render_init(result: InitResult) -> str:
    lines = [f"wrote the {result.template} template into {result.root}:"]
    lines += [f"  {path}" for path in result.written]
    lines += ["", "next steps:"]
    lines += [f"  {i}. {step}" for i, step in enumerate(result.next_steps, 1)]
    return "\n".join(lines)
