"""Opening one PR's existing preview: the shared first move of seed, stop, resume, tunnel
and env.

The PR's app is judged by the one rule (previewctl.managed) before anything else, and its
secrets are registered for redaction as they are read, so that no later answer or
error can show them. Then the preview's spec is built (with the branch its metadata
records, when the command was not told one): once, for the whole command.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from previewctl import bookkeeping, template
from previewctl.backends.base import Instance
from previewctl.errors import PreviewctlError
from previewctl.managed import require
from previewctl.ops.recorded import recorded_profiles
from previewctl.ops.runtime import Runtime
from previewctl.spec import PreviewSpec
from previewctl.target import Target


@dataclass(frozen=True)
class OpenPreview:
    """A managed preview that exists: what it should be, its instance, its secrets."""

    spec: PreviewSpec
    instance: Instance
    secrets: dict[str, str]
    recorded: tuple[str, ...] = ()
    """The profiles recorded on it (the spec's differ when the run chose others)."""

    @property
    def target(self) -> Target:
        return self.spec.target

    @property
    def app(self) -> str:
        return self.spec.app

    def values(self) -> template.Values:
        """Its secrets and its Vercel projects' branch domains (no tunnels open yet)."""
        return self.spec.values(secrets=self.secrets, vercel_urls=self.spec.domain_urls())


def open_preview(rt: Runtime, target: Target, *, command: str = "previewctl") -> OpenPreview:
    """The PR's managed preview, or a clear error (none, or not previewctl's)."""
    app = rt.config.app_name(target.pr)
    verdict = rt.backend().find(target.pr)  # the one rule; the secrets registered
    if verdict is None:
        raise PreviewctlError(
            f"PR #{target.pr} has no preview (no Fly app {app})",
            hint=f"create it with `previewctl up --pr {target.pr}`",
        )
    instance = bookkeeping.pick_survivor(list(require(verdict, command)))
    secrets = bookkeeping.read_secrets(instance)
    info = bookkeeping.PreviewInfo.of(instance)
    if target.branch is None:
        target = dataclasses.replace(target, branch=info.branch, event_branch=None)
    if target.profiles is None:  # the run chose none: the preview's own set
        target = dataclasses.replace(target, profiles=recorded_profiles(rt, info.profiles))
    return OpenPreview(rt.spec(target), instance, secrets, info.profiles)
