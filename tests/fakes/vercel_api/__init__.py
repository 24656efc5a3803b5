"""A stateful fake of the parts of the Vercel REST API previewctl uses.

Projects (with the connected repo's branches), environment variables (branch-scoped
validation, upsert, ``failed[]`` in a 201, per-deployment size limit, encrypted and
sensitive values that never come back in plaintext, cursor pagination), project
domains, and deployments (list with filters and ``until`` paging, get, redeploy with a
lazily computed QUEUED → BUILDING → READY timeline). Deployment states are
@vercel/sdk's: ``ERROR``, ``CANCELED``, ``BLOCKED`` and ``DELETED`` are final like
``READY`` and are still listed (a deleted deployment shows as ``DELETED``).

Behaviour follows ``shared/reference/vercel-github.md``. Where Vercel's behaviour is
not documented the fake is strict, so client bugs surface in tests:

* schema errors in an env item (``key``/``value`` not strings, unknown ``type``,
  ``target`` not a non-empty list of known targets) fail the whole request with 400;
* a redeploy whose ``name`` differs from the source deployment's project, or that
  asks for a ``target`` other than the source's, is refused with 400.
"""

from __future__ import annotations

from typing import ClassVar

from werkzeug.routing import Rule

from tests.fakes.vercel_api import deployments, domains, env, projects
from tests.fakes.vercel_api.common import (
    ENV_TARGETS,
    ENV_TYPES,
    FINAL_STATES,
    READY_STATES,
    ProjectState,
)
from tests.fakes.vercel_api.deployments import DeploymentsApi
from tests.fakes.vercel_api.domains import DomainsApi
from tests.fakes.vercel_api.env import EnvApi
from tests.fakes.vercel_api.projects import ProjectsApi

__all__ = ["ENV_TARGETS", "ENV_TYPES", "FINAL_STATES", "READY_STATES", "ProjectState", "VercelFake"]


class VercelFake(ProjectsApi, EnvApi, DomainsApi, DeploymentsApi):
    """Loopback fake of ``api.vercel.com``. Start with ``with VercelFake(token=...) as v:``.

    One module per resource (projects, env, domains, deployments); this class only joins
    their routes.
    """

    rules: ClassVar[list[Rule]] = [
        *projects.RULES,
        *env.RULES,
        *domains.RULES,
        *deployments.RULES,
    ]
