"""The kinds of ``[[steps]]`` and ``[[seed]]`` entries: a tagged union, one class per kind.

A kind is told by its key (``run`` or ``http``: previewctl.toml has no ``kind``). Each
kind knows its templated strings (so the config checker, ``seed`` and preflight see
every placeholder and file), how to build itself into something runnable once the
placeholders have values, how to run that, and how ``plan`` shows it. Nothing else
walks a step's fields. Adding a kind is one class here plus its tag in
:data:`StepConfig` and :data:`_KINDS`.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Protocol

import httpx
from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from previewctl import redact
from previewctl.config_sections import StrictModel, as_duration
from previewctl.errors import ConfigError, StepFailedError
from previewctl.reporter import Reporter
from previewctl.steps import CommandStep, HttpStep, run_command, run_http

Render = Callable[[str, str], str]
"""``render(text, key)``: the text with its placeholders filled; ``key`` (below the step,
e.g. ``http.url``) names the string in an error."""

ONE_KIND = "a step needs exactly one of `run` or `http`"
# An env var a step gets (and `previewctl env` prints as `export NAME=...`): a shell name,
# so that neither execve nor an `eval` of that output can read it as anything else.
_ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# An HTTP header name (RFC 9110 token).
_HEADER_NAME_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


@dataclass(frozen=True)
class Templated:
    """One string of a step that may hold placeholders."""

    key: str  # below the step: "run[0]", "env.CI", "http.url"
    text: str
    path: bool = False  # a file path: rendered before anything runs, so few placeholders


@dataclass(frozen=True)
class NeededFile:
    """A file a step reads, which must exist (or be created by an earlier step)."""

    key: str
    what: str
    path: str


class StepRunner:
    """What running steps shares: the reporter, the config's directory, one HTTP client."""

    def __init__(self, reporter: Reporter, root: Path) -> None:
        self.reporter = reporter
        self.root = root
        self._http: httpx.Client | None = None

    def http(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(follow_redirects=True)
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    def __enter__(self) -> StepRunner:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class Prepared(Protocol):
    """A step with its placeholders filled in: run it (again, on a retry)."""

    def execute(self, runner: StepRunner) -> None: ...


class _Step(StrictModel):
    """What every kind has."""

    tag: ClassVar[str]
    name: str = Field(min_length=1)
    timeout: Annotated[float, Field(gt=0)] = 600.0
    retries: int = Field(default=0, ge=0, le=10)
    env: dict[str, str] = Field(default_factory=dict)

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, value: Any) -> float:
        return as_duration(value)

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for key, text in value.items():
            if not _ENV_NAME_RE.fullmatch(key):
                raise ValueError(
                    f"env name {key!r} is not a valid environment variable name: use "
                    "letters, digits and _, not starting with a digit (a shell can export it)"
                )
            if "\0" in text:
                raise ValueError(f"env {key}: a value cannot contain a NUL character")
        return value

    def _env_strings(self) -> Iterator[Templated]:
        for key, text in self.env.items():
            yield Templated(f"env.{key}", text)

    def _render_env(self, render: Render) -> dict[str, str]:
        return {k: render(v, f"env.{k}") for k, v in self.env.items()}

    def templated(self) -> Iterator[Templated]:
        """Every string that may hold placeholders, in the order the file has them."""
        yield from self._env_strings()

    def files_created(self, render: Render) -> list[str]:  # noqa: ARG002 - for the kinds
        """Paths (relative to the config's directory) this step writes for later ones."""
        return []

    def files_needed(self, render: Render) -> list[NeededFile]:  # noqa: ARG002 - as above
        """Files this step reads, which must be there before the run starts."""
        return []

    def build(self, render: Render, root: Path) -> Prepared:
        raise NotImplementedError

    def describe(self, render: Render) -> dict[str, Any]:
        """How ``plan`` shows the step (``--json``): the rendered fields."""
        raise NotImplementedError

    @classmethod
    def plan_lines(cls, planned: dict[str, Any]) -> list[str]:
        """The text lines of ``plan`` for what :meth:`describe` returned."""
        raise NotImplementedError


# ---- run: a command on this machine -----------------------------------------------------


@dataclass(frozen=True)
class PreparedCommand:
    command: CommandStep
    creates: tuple[tuple[str, Path], ...]  # (as written, resolved)

    def execute(self, runner: StepRunner) -> None:
        run_command(self.command, runner.reporter)
        missing = [shown for shown, path in self.creates if not path.exists()]
        if missing:
            raise StepFailedError(
                f"step {self.command.name} succeeded but did not create {', '.join(missing)} "
                "(listed in its `creates`)"
            )


class RunStepConfig(_Step):
    tag: ClassVar[str] = "run"
    run: str | list[str]
    # Files (relative to the config's directory) a `run` step writes for later steps,
    # e.g. the project JSON a seed PUTs: their absence before the run is not an error.
    creates: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _usable(self) -> RunStepConfig:
        if any(not path.strip() for path in self.creates):
            raise ValueError("`creates` holds an empty path")
        if isinstance(self.run, list) and not self.run:
            raise ValueError("`run` is an empty list")
        if isinstance(self.run, str):
            try:
                if not shlex.split(self.run):
                    raise ValueError("`run` is empty")
            except ValueError as exc:
                raise ValueError(f"`run` cannot be split like a shell would: {exc}") from None
        return self

    def argv(self, rendered_run: str | list[str]) -> list[str]:
        return shlex.split(rendered_run) if isinstance(rendered_run, str) else list(rendered_run)

    def templated(self) -> Iterator[Templated]:
        if isinstance(self.run, str):
            yield Templated("run", self.run)
        else:
            for j, arg in enumerate(self.run):
                yield Templated(f"run[{j}]", arg)
        yield from self._env_strings()
        for j, path in enumerate(self.creates):
            yield Templated(f"creates[{j}]", path, path=True)

    def files_created(self, render: Render) -> list[str]:
        return [render(path, f"creates[{j}]") for j, path in enumerate(self.creates)]

    def _rendered_run(self, render: Render) -> list[str]:
        if isinstance(self.run, str):
            return self.argv(render(self.run, "run"))
        return [render(arg, "run") for arg in self.run]

    def build(self, render: Render, root: Path) -> PreparedCommand:
        env = self._render_env(render)
        argv = self._rendered_run(render)
        command = CommandStep(name=self.name, argv=argv, env=env, cwd=root, timeout=self.timeout)
        made = [render(path, "creates") for path in self.creates]
        return PreparedCommand(command, tuple((m, (root / m).resolve()) for m in made))

    def describe(self, render: Render) -> dict[str, Any]:
        return {
            "name": self.name,
            "timeout": self.timeout,
            "run": self._rendered_run(render),
            "env": self._render_env(render),
            "creates": [render(c, "creates") for c in self.creates],
        }

    @classmethod
    def plan_lines(cls, planned: dict[str, Any]) -> list[str]:
        lines = [f"  {planned['name']}: {' '.join(planned['run'])}"]
        lines += [f"      {k}={v}" for k, v in planned["env"].items()]
        if planned["creates"]:
            lines.append(f"      creates: {', '.join(planned['creates'])}")
        return lines


# ---- http: one request --------------------------------------------------------------------


class HttpRequest(StrictModel):
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] = "GET"
    url: str
    body_file: str | None = None
    body: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("headers")
    @classmethod
    def _header_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not _HEADER_NAME_RE.fullmatch(name):
                raise ValueError(f"header name {name!r} is not a valid HTTP header name")
        return value

    @model_validator(mode="after")
    def _one_body(self) -> HttpRequest:
        if self.body is not None and self.body_file is not None:
            raise ValueError("give body or body_file, not both")
        return self


@dataclass(frozen=True)
class PreparedRequest:
    request: HttpStep

    def execute(self, runner: StepRunner) -> None:
        run_http(self.request, runner.http(), runner.reporter)


class HttpStepConfig(_Step):
    tag: ClassVar[str] = "http"
    http: HttpRequest

    @model_validator(mode="before")
    @classmethod
    def _no_creates(cls, value: Any) -> Any:
        if isinstance(value, dict) and "creates" in value:
            raise ValueError("`creates` is for `run` steps: an `http` step writes no files")
        return value

    def templated(self) -> Iterator[Templated]:
        yield from self._env_strings()
        yield Templated("http.url", self.http.url)
        for k, v in self.http.headers.items():
            yield Templated(f"http.headers.{k}", v)
        if self.http.body is not None:
            yield Templated("http.body", self.http.body)
        if self.http.body_file is not None:
            yield Templated("http.body_file", self.http.body_file, path=True)

    def files_needed(self, render: Render) -> list[NeededFile]:
        if self.http.body_file is None:
            return []
        key = "http.body_file"
        return [NeededFile(key, "body_file", render(self.http.body_file, key))]

    def _body(self, render: Render, root: Path) -> bytes | None:
        http = self.http
        if http.body_file is not None:
            path = root / render(http.body_file, "http.body_file")
            try:
                return path.read_bytes()
            except OSError as exc:
                # Checked before the first remote call (preflight): what fails here was
                # changed on the way, by an earlier step (a directory where a file was due).
                raise StepFailedError(
                    f"step {self.name}: cannot read body_file {path}: {exc.strerror}",
                    hint="the step that `creates` it must write a file there",
                ) from None
        if http.body is not None:
            return render(http.body, "http.body").encode()
        return None

    def build(self, render: Render, root: Path) -> PreparedRequest:
        http = self.http
        self._render_env(render)  # a request has no environment, but its errors count
        body = self._body(render, root)
        return PreparedRequest(
            HttpStep(
                name=self.name,
                method=http.method,
                url=self._usable(render(http.url, "http.url")),
                headers={k: render(v, "http.headers") for k, v in http.headers.items()},
                body=body,
                timeout=self.timeout,
            )
        )

    def _usable(self, url: str) -> str:
        """The rendered URL, if httpx can send to it (http or https, a numeric port): else
        the config error it is - never a crash in the middle of the seed."""
        try:
            scheme = httpx.URL(url).scheme
        except httpx.InvalidURL as exc:
            problem = f"is not a usable URL: {redact.clean(str(exc))}"
        else:
            if scheme in ("http", "https"):
                return url
            problem = f"must be http:// or https://, not {scheme or 'none'}"
        raise ConfigError(f"step {self.name}: http.url {problem}")

    def describe(self, render: Render) -> dict[str, Any]:
        http = self.http
        return {
            "name": self.name,
            "timeout": self.timeout,
            "http": {
                "method": http.method,
                "url": render(http.url, "http.url"),
                "headers": {k: render(v, "http.headers") for k, v in http.headers.items()},
                "body_file": http.body_file,
            },
        }

    @classmethod
    def plan_lines(cls, planned: dict[str, Any]) -> list[str]:
        http = planned["http"]
        return [f"  {planned['name']}: {http['method']} {http['url']}"]


# ---- the union ------------------------------------------------------------------------------

_KINDS: dict[str, type[_Step]] = {"run": RunStepConfig, "http": HttpStepConfig}


def kind_of(value: Any) -> str | None:
    """The tag of a step: its model's, or (as written, or as ``plan`` shows it) the one
    kind key it has. None when it has none or several."""
    if isinstance(value, _Step):
        return value.tag
    if isinstance(value, dict):
        found = [tag for tag in _KINDS if tag in value]
        return found[0] if len(found) == 1 else None
    return None


StepConfig = Annotated[
    Annotated[RunStepConfig, Tag("run")] | Annotated[HttpStepConfig, Tag("http")],
    Discriminator(kind_of, custom_error_type="step_kind", custom_error_message=ONE_KIND),
]


def plan_lines(planned: dict[str, Any]) -> list[str]:
    """``plan``'s text for one step as :meth:`describe` showed it, by its kind."""
    tag = kind_of(planned)
    assert tag is not None, "describe() always writes its kind's key"
    return _KINDS[tag].plan_lines(planned)
