"""What a preview machine costs: the price table, in one place.

Source: ``shared/reference/fly.md`` — third-party figures, not Fly's invoice:

* a started shared-cpu-4x machine with 4 GB costs about **$0.032/hour**;
* a stopped machine costs only its root filesystem, about **$0.15/GB/month**.

Fly prices CPU and memory separately, so the table does too. The split uses Fly's
published add-on price for memory (about $5/GB/month ≈ $0.00685/GB-hour) and gives
the rest to the CPUs, so that 4 shared CPUs + 4 GB come to exactly $0.032/hour:
``4 × 0.00115 + 4 × 0.00685 = 0.032``. A performance CPU is about 25× a shared one
(performance-1x with 2 GB ≈ $31/month). Months count as 730 hours.

The root filesystem of a stopped machine is assumed to be :data:`DEFAULT_ROOTFS_GB`
(the Machines API does not report it); with the default that is about $0.005/day per
stopped machine — small next to a started one, which is the point of stopping.

Every figure can be overridden in ``[pricing]`` of previewctl.toml (USD):
``shared_cpu_hour``, ``performance_cpu_hour``, ``memory_gb_hour``, ``rootfs_gb_month``.
The result is an estimate for deciding what to clean up, not a bill.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from previewctl.config_sections import PricingSection

HOURS_PER_MONTH = 730.0
SHARED_CPU_HOUR = 0.00115
PERFORMANCE_CPU_HOUR = 0.0288
MEMORY_GB_HOUR = 0.00685
ROOTFS_GB_MONTH = 0.15
DEFAULT_ROOTFS_GB = 1.0

# States in which Fly bills CPU and memory; the rest bill storage only (or nothing).
RUNNING_STATES = frozenset({"started", "starting", "stopping", "replacing", "updating"})
GONE_STATES = frozenset({"destroying", "destroyed"})


@dataclass(frozen=True)
class Prices:
    """USD per unit; see the module docstring for where the defaults come from."""

    shared_cpu_hour: float = SHARED_CPU_HOUR
    performance_cpu_hour: float = PERFORMANCE_CPU_HOUR
    memory_gb_hour: float = MEMORY_GB_HOUR
    rootfs_gb_month: float = ROOTFS_GB_MONTH
    rootfs_gb: float = DEFAULT_ROOTFS_GB

    @classmethod
    def from_config(cls, section: PricingSection | None) -> Prices:
        """The defaults with the ``[pricing]`` overrides the config sets."""
        prices = cls()
        if section is None:
            return prices
        overrides = {k: v for k, v in section.model_dump().items() if v is not None}
        return replace(prices, **overrides)


DEFAULT_PRICES = Prices()


def _guest_numbers(guest: Mapping[str, Any] | None) -> tuple[str, int, float]:
    """(cpu kind, cpus, memory GB) with Fly's defaults for what is missing."""
    guest = guest or {}
    kind = str(guest.get("cpu_kind") or "shared")
    try:
        cpus = max(1, int(guest.get("cpus") or 1))
    except (TypeError, ValueError):
        cpus = 1
    try:
        memory_mb = max(0, int(guest.get("memory_mb") or 256))
    except (TypeError, ValueError):
        memory_mb = 256
    return kind, cpus, memory_mb / 1024.0


def hourly_cost(
    guest: Mapping[str, Any] | None, state: str, prices: Prices = DEFAULT_PRICES
) -> float:
    """USD per hour of a machine with this ``guest`` in ``state``."""
    if state in GONE_STATES:
        return 0.0
    storage = prices.rootfs_gb * prices.rootfs_gb_month / HOURS_PER_MONTH
    if state not in RUNNING_STATES:
        return storage
    kind, cpus, memory_gb = _guest_numbers(guest)
    cpu_rate = prices.performance_cpu_hour if kind == "performance" else prices.shared_cpu_hour
    return cpus * cpu_rate + memory_gb * prices.memory_gb_hour


def describe_size(guest: Mapping[str, Any] | None) -> str:
    """``shared-cpu-4x 4096MB``, as flyctl names sizes."""
    kind, cpus, memory_gb = _guest_numbers(guest)
    prefix = "performance-cpu" if kind == "performance" else "shared-cpu"
    return f"{prefix}-{cpus}x {round(memory_gb * 1024)}MB"


def estimate(
    guest: Mapping[str, Any] | None,
    state: str,
    created_at: datetime | None,
    now: datetime,
    prices: Prices = DEFAULT_PRICES,
) -> tuple[float, float]:
    """(USD per day in the current state, USD so far) of a machine of this ``guest``.

    "So far" assumes the machine has been in its current state since ``created_at``
    (previewctl's marker, else Fly's): Fly does not tell us how long it was stopped, so
    a machine stopped yesterday after a week of running is under-counted, and one
    started a minute ago after a week stopped is over-counted.
    """
    hourly = hourly_cost(guest, state, prices)
    hours = max(0.0, (now - created_at).total_seconds() / 3600.0) if created_at else 0.0
    return hourly * 24.0, hourly * hours
