"""What `up` asks the backend to make true: the PR's app and its machine's config."""

from __future__ import annotations

import copy
from typing import Any

from previewctl import template
from previewctl.backends.base import Desired
from previewctl.config import config_hash
from previewctl.errors import ConfigError
from previewctl.ops.runtime import Runtime
from previewctl.target import Target
from previewctl.template import TemplateError


def render_machine_config(
    rt: Runtime, target: Target, secrets: dict[str, str]
) -> tuple[dict[str, Any], str]:
    """The machine config template with these secrets, and its hash (region included)."""
    config = rt.config
    values = rt.values(target, secrets=secrets)
    try:
        rendered = template.render_tree(copy.deepcopy(config.machine_template), values)
    except TemplateError as exc:
        raise ConfigError(str(exc), file=config.model.machine.config) from None
    assert isinstance(rendered, dict)
    return rendered, config_hash(rendered, config.model.app.region)


def desired(rt: Runtime, target: Target) -> Desired:
    return Desired(
        pr=target.pr,
        branch=target.branch,
        app=rt.config.app_name(target.pr),
        render=lambda secrets: render_machine_config(rt, target, secrets),
    )
