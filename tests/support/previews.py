"""Previews as `up` leaves them (and apps it did not make), seeded into the Fly emulator."""

from __future__ import annotations

import json
import secrets as pysecrets
from datetime import UTC, datetime
from typing import Any

from tests.fakes.fly_api import FlyEmulator

GUEST = {"cpu_kind": "shared", "cpus": 4, "memory_mb": 4096}

GC_TOML = """
[app]
name = "pr-${pr}-agents"
org = "acme"
region = "iad"

[machine]
config = ".fly/machine-config.json"

[secrets]
generate = ["pg_password", "api_key"]

[vercel]
redeploy = false

[vercel.projects.web]
domain = "pr-${pr}-web.example.com"
env = { DATABASE_URL = "postgresql://app:${secrets.pg_password}@${app.hostname}:5432/db" }

[gc]
max_age = "7d"
"""


def feature_branch(pr: int) -> str:
    """The head branch the gc and managed tests give PR ``pr``."""
    return f"feature/pr-{pr}"


def preview_app(pr: int) -> str:
    """The app GC_TOML's ``[app] name`` makes for PR ``pr``."""
    return f"pr-{pr}-agents"


def iso(when: datetime) -> str:
    return when.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def preview_metadata(
    pr: int,
    *,
    branch: str,
    created_at: datetime,
    last_up: datetime | None,
    secrets: dict[str, str] | None = None,
) -> dict[str, str]:
    """The marker and bookkeeping `up` writes (keys from previewctl.bookkeeping)."""
    meta = {
        "previewctl": "1",
        "previewctl_pr": str(pr),
        "previewctl_branch": branch,
        "previewctl_config_hash": "0123456789abcdef",
        "previewctl_created_at": iso(created_at),
        "previewctl_secrets": json.dumps(secrets or {"pg_password": pysecrets.token_hex(16)}),
    }
    if last_up is not None:
        meta["previewctl_last_up"] = iso(last_up)
    return meta


def seed_preview(
    fly: FlyEmulator,
    app: str,
    pr: int,
    *,
    branch: str,
    last_up: datetime | None,
    created_at: datetime | None = None,
    state: str = "started",
    guest: dict[str, Any] | None = None,
    secrets: dict[str, str] | None = None,
    org: str | None = None,
) -> str:
    """A Fly app with one machine as `up` leaves it; returns the machine id."""
    if app not in fly.apps:
        fly.add_app(app, org)
    created = created_at or last_up or datetime.now(UTC)
    pg = (secrets or {}).get("pg_password", "unused-password")
    config = {
        "guest": dict(guest or GUEST),
        "containers": [
            {"name": "db", "image": "postgres:18", "env": {"POSTGRES_PASSWORD": pg}},
        ],
        "metadata": preview_metadata(
            pr, branch=branch, created_at=created, last_up=last_up, secrets=secrets
        ),
    }
    return fly.add_machine(app, config, state=state).id


def seed_unmarked(fly: FlyEmulator, app: str, *, state: str = "started") -> str:
    """An app made by hand: a machine without previewctl's marker."""
    if app not in fly.apps:
        fly.add_app(app)
    config = {"guest": dict(GUEST), "image": "nginx:1", "metadata": {"owner": "someone"}}
    return fly.add_machine(app, config, state=state).id
