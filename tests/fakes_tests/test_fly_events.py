"""The Fly emulator's machine events and per-container states (what diagnostics read)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fakes.fly_api import FlyEmulator

TOKEN = "fo1_test-token"
CONFIG: dict[str, Any] = {
    "containers": [
        {
            "name": "db",
            "image": "postgres:16",
            "healthchecks": [{"name": "pg", "tcp": {"port": 5432}}],
        },
        {"name": "api", "image": "api:1"},
    ]
}


@pytest.fixture
def emu() -> Iterator[FlyEmulator]:
    with FlyEmulator(token=TOKEN, org="acme", boot_seconds=0.01, stop_seconds=0.01) as fake:
        yield fake


def get(emu: FlyEmulator, app: str, machine_id: str) -> dict[str, Any]:
    response = httpx.get(
        f"{emu.url}/v1/apps/{app}/machines/{machine_id}",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5,
    )
    assert response.status_code == 200
    return dict(response.json())


def test_events_are_newest_first_with_fly_gos_fields(emu: FlyEmulator) -> None:
    emu.add_app("pr-1")
    created = httpx.post(
        f"{emu.url}/v1/apps/pr-1/machines",
        json={"config": CONFIG, "region": "iad"},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5,
    ).json()
    machine_id = created["id"]
    emu.crash_container("pr-1", machine_id, "db", exit_code=137, output="killed", oom_killed=True)
    answer = get(emu, "pr-1", machine_id)
    for _ in range(500):  # booting takes boot_seconds
        if answer["state"] == "started":
            break
        answer = get(emu, "pr-1", machine_id)
    kinds = [(e["type"], e["status"], e["source"]) for e in answer["events"]]
    assert kinds == [
        ("exit", "exited", "flyd"),
        ("start", "started", "flyd"),
        ("launch", "created", "user"),
    ]
    for event in answer["events"]:
        assert isinstance(event["timestamp"], int)  # milliseconds since the epoch
        assert event["timestamp"] > 1_600_000_000_000
    assert answer["events"][0]["request"]["exit_event"] == {
        "exit_code": 137,
        "oom_killed": True,
        "requested_stop": False,
    }
    assert {c["name"]: c["state"] for c in answer["containers"]} == {
        "db": "exited",
        "api": "running",
    }
    [check] = [c for c in answer["checks"] if c["name"] == "db-pg"]
    assert (check["status"], check["output"]) == ("critical", "killed")


def test_a_stop_is_logged_when_it_is_reached(emu: FlyEmulator) -> None:
    emu.add_app("pr-2")
    machine = emu.add_machine("pr-2", CONFIG)
    httpx.post(
        f"{emu.url}/v1/apps/pr-2/machines/{machine.id}/stop",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5,
    )
    deadline_events: list[str] = []
    for _ in range(200):
        deadline_events = [e["type"] for e in get(emu, "pr-2", machine.id)["events"]]
        if deadline_events and deadline_events[0] == "exit":
            break
    assert deadline_events[:2] == ["exit", "start"]
