"""The commands' operations, run in this process with clients built on the fakes.

Each call is one "run" of previewctl, as the CLI makes it: a fresh Runtime over the given
environment (so clients point at the fakes' URLs), a reporter and GitHub Actions writer
that write into buffers, the tokens registered for redaction, and errors turned into the
CLI's exit codes. What differs from a subprocess: no interpreter start, and retries wait
through ``sleep`` (none by default), so the tests are fast and the waits countable.

This module is the one place that knows how an op is called: when the ops' signatures
change, only this adapter follows.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from previewctl import redact
from previewctl.actions import GitHubActions
from previewctl.clients.http import RetryPolicy
from previewctl.errors import PreviewctlError
from previewctl.ops.runtime import Runtime
from previewctl.reporter import Reporter

TOKEN_VARS = ("FLY_API_TOKEN", "FLY_ACCESS_TOKEN", "VERCEL_TOKEN", "GITHUB_TOKEN")


@dataclass
class OpResult:
    """What one in-process run ended with: the exit code the CLI would give, the op's
    return value (None when it failed), the error, and everything it wrote."""

    code: int
    value: Any
    error: PreviewctlError | None
    stderr: str
    stdout: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def ok(self) -> Any:
        """The op's value; fails the test with the output when the op did not succeed."""
        assert self.code == 0, self.output
        return self.value


@dataclass
class Sleeps:
    """A ``sleep`` that does not wait, and remembers what it was asked."""

    calls: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@dataclass
class InProcess:
    """Runs ops of one project, with ``env`` as its environment."""

    config: Path
    env: dict[str, str]
    sleep: Sleeps = field(default_factory=Sleeps)
    history: list[OpResult] = field(default_factory=list)

    def runtime(self, stderr: io.StringIO, stdout: io.StringIO, env: Mapping[str, str]) -> Runtime:
        actions = GitHubActions(dict(env), stream=stderr)  # where the CLI writes them
        rt = Runtime(
            env=dict(env),
            reporter=Reporter(actions=actions, stream=stderr),
            config_path=self.config,
            retry=RetryPolicy(sleep=self.sleep),
        )
        redact.on_register(rt.actions.add_mask)
        for name in TOKEN_VARS:
            token = rt.env.get(name, "").strip()
            if token:
                redact.register(token)
                redact.register(token.rpartition(" ")[2])
        return rt

    def call(
        self, op: Callable[..., Any], *args: Any, env: Mapping[str, str] | None = None, **kw: Any
    ) -> OpResult:
        """``op(runtime, *args, **kw)`` as one run of previewctl."""
        stderr, stdout = io.StringIO(), io.StringIO()
        redact.reset_for_tests()  # a new process knows no secret yet
        code, value, error = 0, None, None
        with _stdout_to(stdout):
            rt = self.runtime(stderr, stdout, {**self.env, **(env or {})})
            try:
                value = op(rt, *args, **kw)
            except PreviewctlError as exc:
                code, error = exc.exit_code, exc
                stderr.write(f"error: {redact.scrub(exc.message)}\n")
                if exc.hint:
                    stderr.write(f"hint: {redact.scrub(exc.hint)}\n")
            except KeyboardInterrupt:
                code = 130
        result = OpResult(code, value, error, stderr.getvalue(), stdout.getvalue())
        self.history.append(result)
        return result

    # ---- the commands ------------------------------------------------------------------
    def up(self, pr: str | None = None, branch: str | None = None, **kw: Any) -> OpResult:
        from previewctl.ops.up import run_up

        return self.call(run_up, pr, branch, **kw)

    def seed(self, pr: str | None = None, branch: str | None = None, **kw: Any) -> OpResult:
        from previewctl.ops.seed import run_seed

        return self.call(run_seed, pr, branch, **kw)

    def down(self, pr: str | None = None, branch: str | None = None, **kw: Any) -> OpResult:
        from previewctl.ops.down import run_down

        return self.call(run_down, pr, branch, **kw)

    def gc(self, max_age: str | None = None, *, dry_run: bool = False, **kw: Any) -> OpResult:
        from previewctl.ops.gc import run_gc

        result = self.call(run_gc, max_age=max_age, dry_run=dry_run, **kw)
        if result.code == 0 and result.value is not None and result.value.exit_code:
            result.code = result.value.exit_code  # the CLI exits with gc's own verdict
        return result

    def status(self, pr: str | None = None, **kw: Any) -> OpResult:
        from previewctl.ops.status import run_status

        return self.call(run_status, pr, **kw)

    def stop(self, pr: str, **kw: Any) -> OpResult:
        from previewctl.ops.stop import run_stop

        return self.call(run_stop, pr, **kw)

    def env_values(self, pr: str, **kw: Any) -> OpResult:
        from previewctl.ops.envcmd import run_env

        return self.call(run_env, pr, **kw)

    def all_output(self) -> str:
        return "".join(r.output for r in self.history)


@contextlib.contextmanager
def _stdout_to(buffer: io.StringIO) -> Iterator[None]:
    """What an op writes to stdout itself (resume's instructions, say) lands in ``buffer``."""
    with contextlib.redirect_stdout(buffer):
        yield
