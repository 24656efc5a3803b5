"""What every command shares: the environment, the config, the reporter, the backend
where previews run, and the clients.

The backend and the clients are built lazily, so a command asks only for the
credentials its work needs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from previewctl import config_checks, template
from previewctl.actions import GitHubActions
from previewctl.backends import platform
from previewctl.backends.base import Platform, PreviewBackend
from previewctl.clients.github import GitHubClient
from previewctl.clients.http import RetryPolicy, build_http_client
from previewctl.clients.vercel import VercelClient
from previewctl.config import Config, load_config
from previewctl.configfile import json_line
from previewctl.errors import InputError, MissingCredentialsError
from previewctl.reporter import Reporter, wants_plain
from previewctl.repository import Repository
from previewctl.spec import PreviewSpec, build_spec
from previewctl.target import Target
from previewctl.tokens import read_token, without_scheme

DEFAULT_VERCEL_URL = "https://api.vercel.com"
DEFAULT_GITHUB_URL = "https://api.github.com"


@dataclass
class Runtime:
    env: Mapping[str, str]
    reporter: Reporter
    config_path: Path
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    _config: Config | None = None
    _backend: PreviewBackend | None = None
    _vercel: VercelClient | None = None
    _github: GitHubClient | None = None
    _specs: dict[Target, PreviewSpec] = field(default_factory=dict)

    @classmethod
    def from_environ(cls, config_path: Path, *, verbose: bool = False) -> Runtime:
        env = dict(os.environ)
        actions = GitHubActions(env)
        return cls(
            env=env,
            reporter=Reporter(actions=actions, verbose=verbose, plain=wants_plain(env)),
            config_path=config_path,
        )

    @property
    def actions(self) -> GitHubActions:
        return self.reporter.actions

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    def check_env_refs(self, *, seed: bool = False, profiles: tuple[str, ...] = ()) -> None:
        """Every ${env.NAME} the command will use must be set before anything changes."""
        refs = self.config.env_refs(seed=seed, profiles=profiles)
        missing = sorted(n for n in refs if n not in self.env)
        if missing:
            where = env_ref_places(self.config, set(missing))
            raise InputError(
                "the config uses environment variables that are not set: "
                + ", ".join(
                    f"{name} ({where[name]})" if name in where else name for name in missing
                ),
                hint="export them, or give a default where they are used: ${env.NAME:-DEFAULT}",
            )

    def spec(self, target: Target) -> PreviewSpec:
        """What ``target``'s preview should be, with its active profiles (none when not
        chosen yet); computed once per command and target."""
        if target not in self._specs:
            self._specs[target] = build_spec(
                self.config,
                target,
                self.env,
                hostname=self.platform.hostname,
                profiles=target.profiles or (),
            )
        return self._specs[target]

    # ---- clients ---------------------------------------------------------------------
    def _log(self, line: str) -> None:
        self.reporter.detail(line)

    @property
    def platform(self) -> Platform:
        """Where previews run, as known without credentials."""
        return platform()

    def backend(self) -> PreviewBackend:
        """Where previews run; InputError when its token is missing or unusable."""
        if self._backend is None:
            self._backend = self.platform.open(
                self.env, lambda: self.config, self.reporter, retry=self.retry
            )
        return self._backend

    def _retrying(self, line: str) -> None:
        self.reporter.info(f"  {line}")

    def vercel_configured(self) -> bool:
        vercel = self.config.model.vercel
        return bool(vercel and vercel.projects)

    def vercel(self) -> VercelClient:
        if self._vercel is None:
            token = read_token(self.env, "VERCEL_TOKEN")
            if not token:
                raise MissingCredentialsError(
                    "VERCEL_TOKEN is not set (the config has [vercel] projects)",
                    hint="create a token in Vercel's account settings and export VERCEL_TOKEN",
                )
            base = self.env.get("VERCEL_API_URL") or DEFAULT_VERCEL_URL
            http = build_http_client(base, {"Authorization": f"Bearer {without_scheme(token)}"})
            vercel = self.config.model.vercel
            self._vercel = VercelClient(
                http,
                team_id=vercel.team_id if vercel else None,
                retry=self.retry,
                on_request=self._log,
            )
            self._vercel.on_retry = self._retrying
        return self._vercel

    def github_available(self) -> bool:
        token = (self.env.get("GITHUB_TOKEN") or "").strip()
        return bool(token and self.env.get("GITHUB_REPOSITORY"))

    def github(self) -> GitHubClient:
        if self._github is None:
            token = read_token(self.env, "GITHUB_TOKEN")
            if not token:
                raise MissingCredentialsError("GITHUB_TOKEN is not set (or blank)")
            base = self.env.get("GITHUB_API_URL") or DEFAULT_GITHUB_URL
            http = build_http_client(
                base,
                {
                    "Authorization": f"Bearer {without_scheme(token)}",
                    "Accept": "application/vnd.github+json",
                    "X-GitHub-Api-Version": "2022-11-28",
                },
            )
            self._github = GitHubClient(http, retry=self.retry, on_request=self._log)
            self._github.on_retry = self._retrying
        return self._github

    @property
    def repo(self) -> str | None:
        return (self.env.get("GITHUB_REPOSITORY") or "").strip() or None

    @property
    def repository(self) -> Repository | None:
        """The repository the one rule judges with (every command reads it alike)."""
        return Repository.from_env(self.env)


def env_ref_places(config: Config, names: set[str]) -> dict[str, str]:
    """Where each ``${env.NAME}`` of ``names`` is first used: ``file:line [key]``."""
    machine_prefix = f"{config.model.machine.config}:"
    machine_file = (config.path.parent / config.model.machine.config).resolve()
    places: dict[str, str] = {}
    for key, text in config_checks.all_strings(config):
        for ref in template.refs(text):
            name = ref.parts[1] if ref.namespace == "env" and len(ref.parts) > 1 else None
            if name is None or name not in names or name in places:
                continue
            if key.startswith(machine_prefix):
                path = key[len(machine_prefix) :]
                line = _machine_line(machine_file, path)
                places[name] = f"{machine_file}{f':{line}' if line else ''} [{path}]"
            else:
                line = config.line_of(key)
                places[name] = f"{config.path}{f':{line}' if line else ''} [{key}]"
    return places


def _machine_line(path: Path, key: str) -> int | None:
    try:
        return json_line(path.read_text(encoding="utf-8"), key)
    except OSError:
        return None
