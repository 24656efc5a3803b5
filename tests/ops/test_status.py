"""`status` run as the installed console script against the Fly emulator (Fly credentials only)."""

from __future__ import annotations

import json
import secrets as pysecrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from previewctl.backends.fly.pricing import Prices, hourly_cost
from tests.fakes.fly_api import FlyEmulator
from tests.support.checks import assert_no_leak
from tests.support.cli import Cli
from tests.support.previews import GC_TOML, seed_preview, seed_unmarked
from tests.support.project import Project

SHARED_4X = {"cpu_kind": "shared", "cpus": 4, "memory_mb": 4096}
SHARED_2X = {"cpu_kind": "shared", "cpus": 2, "memory_mb": 1024}
PERF_1X = {"cpu_kind": "performance", "cpus": 1, "memory_mb": 2048}
# (pr, guest, state, days since creation)
MACHINES: list[tuple[int, dict[str, Any], str, float]] = [
    (1, SHARED_4X, "started", 2.0),
    (2, SHARED_2X, "stopped", 5.0),
    (3, PERF_1X, "started", 0.5),
    (4, SHARED_4X, "stopped", 1.0),
]


@pytest.fixture
def seeded(fly: FlyEmulator, project: Project) -> dict[str, str]:
    """Previews as `up` leaves them, plus look-alikes; returns every secret value."""
    project.write(GC_TOML)
    now = datetime.now(UTC)
    values: dict[str, str] = {}
    for pr, guest, state, days in MACHINES:
        secrets = {"pg_password": pysecrets.token_hex(16), "api_key": pysecrets.token_hex(16)}
        values.update({f"{pr}-{k}": v for k, v in secrets.items()})
        created = now - timedelta(days=days)
        seed_preview(
            fly,
            f"pr-{pr}-agents",
            pr,
            branch=f"feature/pr-{pr}",
            created_at=created,
            last_up=created + timedelta(hours=1),
            state=state,
            guest=guest,
            secrets=secrets,
        )
    seed_unmarked(fly, "pr-9-agents")
    seed_unmarked(fly, "production-api")
    return values


def expected_costs(prices: Prices) -> tuple[float, float]:
    per_day = 0.0
    so_far = 0.0
    for _pr, guest, state, days in MACHINES:
        hourly = hourly_cost(guest, state, prices)
        per_day += hourly * 24
        so_far += hourly * 24 * days
    return per_day, so_far


def test_status_totals_follow_the_price_table(cli: Cli, seeded: dict[str, str]) -> None:
    result = cli.run("--json", "status")
    assert result.code == 0, result.output
    data = result.json()
    per_day, so_far = expected_costs(Prices())
    assert data["totals"]["cost_per_day"] == pytest.approx(per_day, abs=1e-3)
    assert data["totals"]["cost_so_far"] == pytest.approx(so_far, rel=1e-3)
    assert data["totals"]["previews"] == len(MACHINES)
    assert data["totals"]["states"] == {"started": 2, "stopped": 2}
    rows = {r["app"]: r for r in data["rows"]}
    assert set(rows) == {f"pr-{pr}-agents" for pr, *_ in MACHINES} | {"pr-9-agents"}
    assert rows["pr-9-agents"]["managed"] is False
    assert "not managed" in rows["pr-9-agents"]["reason"]
    one = rows["pr-1-agents"]
    assert one["size"] == "shared-cpu-4x 4096MB"
    assert one["state"] == "started"
    assert one["cost_per_day"] == pytest.approx(0.032 * 24, abs=1e-4)
    assert rows["pr-3-agents"]["size"] == "performance-cpu-1x 2048MB"
    # no secret anywhere, not in the JSON, not in the table
    assert_no_leak(result.output, list(seeded.values()))
    assert "previewctl_secrets" not in result.stdout

    plain = cli.run("status")
    assert plain.code == 0, plain.output
    assert "pr-1-agents" in plain.stdout
    assert "not managed" in plain.stdout
    assert "production-api" not in plain.stdout
    assert f"${per_day:,.2f}/day" in plain.stdout
    assert_no_leak(plain.output, list(seeded.values()))


def test_pricing_overrides_from_the_config(
    cli: Cli, project: Project, seeded: dict[str, str]
) -> None:
    project.write(GC_TOML + "\n[pricing]\nshared_cpu_hour = 0.01\nmemory_gb_hour = 0.002\n")
    result = cli.run("--json", "status")
    assert result.code == 0, result.output
    prices = Prices(shared_cpu_hour=0.01, memory_gb_hour=0.002)
    per_day, _ = expected_costs(prices)
    assert result.json()["totals"]["cost_per_day"] == pytest.approx(per_day, abs=1e-3)
    assert result.json()["prices"]["shared_cpu_hour"] == 0.01


def test_status_of_one_preview_in_detail(cli: Cli, seeded: dict[str, str]) -> None:
    result = cli.run("--json", "status", "--pr", "1")
    assert result.code == 0, result.output
    data = result.json()
    assert data["app"] == "pr-1-agents"
    assert data["branch"] == "feature/pr-1"
    assert data["hostname"] == "pr-1-agents.fly.dev"
    assert data["vercel"] == {"web": "https://pr-1-web.example.com"}
    (machine,) = data["machines"]
    assert machine["state"] == "started"
    assert machine["containers"] == [{"name": "db", "image": "postgres:18", "state": "running"}]
    assert machine["cost_per_day"] == pytest.approx(0.032 * 24, abs=1e-4)
    assert_no_leak(result.output, list(seeded.values()))
    assert "POSTGRES_PASSWORD" not in json.dumps(data)

    plain = cli.run("status", "--pr", "1")
    assert plain.code == 0, plain.output
    assert "feature/pr-1" in plain.stdout
    assert "container db" in plain.stdout
    assert_no_leak(plain.output, list(seeded.values()))


def test_status_of_a_pr_without_preview_fails_clearly(cli: Cli, seeded: dict[str, str]) -> None:
    result = cli.run("status", "--pr", "77")
    assert result.code == 1
    assert "PR #77 has no preview" in result.stderr

    hand_made = cli.run("--json", "status", "--pr", "9")
    assert hand_made.code == 0, hand_made.output
    assert hand_made.json()["managed"] is False


def test_status_with_no_previews(cli: Cli, fly: FlyEmulator, project: Project) -> None:
    project.write(GC_TOML)
    result = cli.run("status")
    assert result.code == 0, result.output
    assert "total: 0 preview(s)" in result.stdout
