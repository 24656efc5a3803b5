"""What `up` asks the backend to make true, from the preview's spec: the PR's app, its
machine's config and secrets, its public addresses."""

from __future__ import annotations

from typing import Any

from previewctl import bookkeeping
from previewctl.backends.base import Desired
from previewctl.config import config_hash
from previewctl.spec import PreviewSpec


def render_machine_config(spec: PreviewSpec, secrets: dict[str, str]) -> tuple[dict[str, Any], str]:
    """The machine config template with these secrets, and its hash (region included)."""
    rendered = spec.render_machine(spec.values(secrets=secrets))
    return rendered, config_hash(rendered, spec.region)


def complete_secrets(spec: PreviewSpec, existing: dict[str, str]) -> dict[str, str]:
    wanted = spec.secrets
    return bookkeeping.complete_secrets(existing, wanted.names, wanted.length, wanted.formats)


def desired(spec: PreviewSpec) -> Desired:
    return Desired(
        pr=spec.pr,
        branch=spec.branch,
        app=spec.app,
        region=spec.region,
        render=lambda secrets: render_machine_config(spec, secrets),
        complete=lambda existing: complete_secrets(spec, existing),
        addresses=spec.ips if spec.has_services else (),
        profiles=spec.profiles,
    )
