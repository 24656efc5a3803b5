"""How Fly is reached from this environment: the Machines API URL and the token."""

from __future__ import annotations

from collections.abc import Mapping

from previewctl.errors import MissingCredentialsError
from previewctl.tokens import fly_token

DEFAULT_BASE_URL = "https://api.machines.dev"
# The contract's name first, then the one fly-go and flyctl read for the Machines API.
# flyctl reads FLY_API_BASE_URL as its GraphQL base: see tunnels.flyctl_env.
BASE_URL_ENV = ("FLY_API_BASE_URL", "FLY_FLAPS_BASE_URL")
MACAROON_PREFIXES = ("fm1r_", "fm1a_", "fm2_")


def machines_base_url(env: Mapping[str, str]) -> str:
    """The Machines API: ``FLY_API_BASE_URL``, else ``FLY_FLAPS_BASE_URL``, else Fly's."""
    for name in BASE_URL_ENV:
        value = (env.get(name) or "").strip()
        if value:
            return value
    return DEFAULT_BASE_URL


def auth_header(token: str) -> str:
    """``FlyV1`` for macaroons, ``Bearer`` for the rest; a token with its scheme stays as is."""
    token = token.strip()
    if " " in token:
        return token
    if token.startswith(MACAROON_PREFIXES):
        return f"FlyV1 {token}"
    return f"Bearer {token}"


def token_from_env(env: Mapping[str, str]) -> str:
    token = fly_token(env)
    if not token:
        raise MissingCredentialsError(
            "FLY_API_TOKEN is not set (or blank)",
            hint="create an org token with `flyctl tokens create org` and export FLY_API_TOKEN",
        )
    return token
