"""What a person reads about Fly's own tools: plain strings (no imports, so ``--help``
and config errors stay fast), given out by :mod:`previewctl.backends`."""

from __future__ import annotations

TOOL = "flyctl"
TOOL_VARIABLE = "PREVIEWCTL_FLYCTL"
TOOL_ENV_LINE = f"{TOOL_VARIABLE}  {TOOL} executable (default flyctl, then fly, on PATH)"
TOOL_NEED = f"{TOOL} on PATH (or {TOOL_VARIABLE})"
ORG_HINT = "`flyctl orgs list` shows it"
REGION_HINT = "`flyctl platform regions`"
