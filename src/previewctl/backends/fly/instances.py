"""A Fly Machine as ops see it: a backends.base.Instance."""

from __future__ import annotations

from previewctl.backends.base import Container, HealthCheck, Instance
from previewctl.backends.fly.models import Machine
from previewctl.backends.fly.pricing import describe_size


def instance_of(machine: Machine) -> Instance:
    images = {
        str(c.get("name")): str(c.get("image", ""))
        for c in machine.config.get("containers") or []
        if isinstance(c, dict)
    }
    states = {c.name: c.state for c in machine.containers}
    return Instance(
        id=machine.id,
        state=machine.state,
        region=machine.region,
        created_at=machine.created_at,
        labels=machine.labels,
        partial_labels=machine.partial_labels,
        config_unknown=machine.config_unknown,
        host_status=machine.host_status,
        healthy=machine.healthy,
        size=describe_size(machine.config.get("guest")),
        containers=tuple(Container(n, image, states.get(n)) for n, image in images.items()),
        checks=tuple(HealthCheck(c.name, c.status, c.output) for c in machine.checks),
        native=machine,
    )


def machine_of(instance: Instance) -> Machine:
    """The Machine behind an Instance this backend made."""
    assert isinstance(instance.native, Machine), "an Instance of another backend"
    return instance.native
