"""A stateful fake of the Fly Machines REST API (``/v1``), served on loopback.

It follows ``shared/reference/fly.md``: apps, machines with a time-driven life
cycle (``starting`` → ``started`` after ``boot_seconds``, per-container health
after ``health_seconds``), ``wait``, leases, metadata, IP assignments, optional
per-action rate limits, plus everything :class:`LoopbackApi` gives (request log,
injected faults, latency).

What Fly's own clients (fly-go, flyctl) expect, and this fake does too:

* ``POST /v1/apps?wait=true`` takes ``name`` (fly-go's ``CreateAppRequest``; the old
  ``app_name`` alone is refused). A created app is invisible for
  ``new_app_hidden_seconds``: every call on it answers ``new_app_hidden_status``
  (404, or 401 as flyctl also expects) and listings leave it out, while its name is
  already taken. A taken name answers 422 with body ``status: "name_taken"`` and the
  legacy prose "Name has already been taken".
* Every machine carries a ``bg_deployments_compat*`` check that is always critical:
  Fly adds such checks for old flyctl versions and they say nothing about the
  machine, so a client must drop them (fly-go's ``RemoveCompatChecks``).
* A freshly started machine reports no check results for ``checks_reported_after``
  seconds (flyctl: "Machine.Checks is empty for freshly-launched machines").
* A lease's TTL is read from the query, ``?ttl=SECONDS``, as fly-go sends it; a body
  is ignored (the default TTL applies).

States are computed from ``time.monotonic()`` timestamps: an action schedules a
timeline (e.g. ``stopping`` now, ``stopped`` in ``stop_seconds``) and
``MachineState.state`` reads it, so no background thread is needed.
"""

from __future__ import annotations

from typing import ClassVar

from werkzeug.routing import Rule

from tests.fakes.fly_api import apps, ips, leases, machines, metadata
from tests.fakes.fly_api.apps import AppsApi
from tests.fakes.fly_api.ips import IpsApi
from tests.fakes.fly_api.leases import LeasesApi
from tests.fakes.fly_api.machines import MachinesApi
from tests.fakes.fly_api.metadata import MetadataApi
from tests.fakes.fly_api.state import (
    COMPAT_CHECK,
    NAME_TAKEN_MESSAGE,
    AppState,
    Lease,
    MachineState,
)

__all__ = ["COMPAT_CHECK", "NAME_TAKEN_MESSAGE", "AppState", "FlyEmulator", "Lease", "MachineState"]


class FlyEmulator(AppsApi, MachinesApi, LeasesApi, MetadataApi, IpsApi):
    """The Fly Machines API, in memory. See the module docstring and ``tests/fakes_tests``.

    One module per resource (apps, machines, leases, metadata, ips); this class only joins
    their routes.
    """

    rules: ClassVar[list[Rule]] = [
        *apps.RULES,
        *machines.RULES,
        *leases.RULES,
        *metadata.RULES,
        *ips.RULES,
    ]
