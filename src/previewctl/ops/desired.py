"""What `up` asks the backend to make true: the PR's app and its machine's config."""

from __future__ import annotations

from typing import Any

from previewctl.backends.base import Desired
from previewctl.config import config_hash
from previewctl.spec import PreviewSpec


def render_machine_config(spec: PreviewSpec, secrets: dict[str, str]) -> tuple[dict[str, Any], str]:
    """The machine config template with these secrets, and its hash (region included)."""
    rendered = spec.render_machine(spec.values(secrets=secrets))
    return rendered, config_hash(rendered, spec.region)


def desired(spec: PreviewSpec) -> Desired:
    return Desired(
        pr=spec.pr,
        branch=spec.branch,
        app=spec.app,
        render=lambda secrets: render_machine_config(spec, secrets),
    )
