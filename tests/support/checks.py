"""Checks on outcomes: the secrets a preview holds, and that none of them leaked."""

from __future__ import annotations

import json

from tests.fakes.fly_api import FlyEmulator


def machine_secrets(fly: FlyEmulator, app: str) -> dict[str, str]:
    """The generated secrets, read back from the emulator (as the product stores them)."""
    machines = [m for m in fly.apps[app].machines.values() if m.state != "destroyed"]
    assert len(machines) == 1
    return dict(json.loads(machines[0].config["metadata"]["previewctl_secrets"]))


def assert_no_leak(text: str, values: list[str]) -> None:
    """Every secret may appear only inside ::add-mask:: lines."""
    for line in text.splitlines():
        if line.startswith("::add-mask::"):
            continue
        for value in values:
            assert value not in line, f"secret leaked in: {line[:120]!r}"
