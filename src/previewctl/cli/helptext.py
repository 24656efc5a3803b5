"""The words of ``--help``: one summary line, what a command needs, examples, exit codes.

Plain strings only (importing this costs nothing, so ``--help`` stays fast). A
paragraph that starts with ``\\b`` keeps its line breaks (click does not rewrap it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

from previewctl.backends import words

APP_HELP = (
    "Give every pull request its own preview backend on Fly.io and wire it into the "
    "PR's Vercel preview deployments.\n\n"
    "Global options (--config, --json, -v) go before or after the command."
)

APP_EPILOG = """\
\b
Typical flow:
  previewctl up && previewctl seed  on every push to a PR (pull_request event)
  previewctl down                   when the PR is closed
  previewctl gc                     on a schedule
  previewctl resume --pr N          on a laptop: start, re-run steps, tunnels

\b
Environment:
  FLY_API_TOKEN      Fly org token (or FLY_ACCESS_TOKEN); all but plan
  FLY_API_BASE_URL   Machines API (default https://api.machines.dev)
  {tool_env_line}
  VERCEL_TOKEN       needed when the config has [vercel] projects
  GITHUB_TOKEN       PR comment, deployment, branch lookup, PR states for gc
  GITHUB_REPOSITORY  owner/name (GITHUB_API_URL, GITHUB_EVENT_PATH: as
                     GitHub Actions sets them)
  PREVIEWCTL_PR      the PR number; PREVIEWCTL_BRANCH its branch
                     (default: the pull_request event)
  PREVIEWCTL_CONFIG  path to previewctl.toml
  CI                 when set: plain progress lines, no live status line

\b
Exit codes: 0 done (or nothing to do), 1 an operation failed, 2 bad input
(found before anything changed), 130 interrupted (after cleanup).

Run `previewctl COMMAND --help` for what a command needs and examples.""".replace(
    "{tool_env_line}", words.TOOL_ENV_LINE
)

_EXIT_WORK = (
    "Exit codes: 0 done, 1 an operation failed, 2 bad input (nothing changed), 130 interrupted."
)


class CommandKwargs(TypedDict):
    help: str
    short_help: str
    epilog: str


@dataclass(frozen=True)
class CommandHelp:
    summary: str
    body: str
    needs: tuple[str, ...]
    examples: tuple[str, ...]
    exits: str = _EXIT_WORK

    def kwargs(self) -> CommandKwargs:
        """Keyword arguments for ``app.command``."""
        help_text = self.summary + ("\n\n" + self.body if self.body else "")
        return CommandKwargs(help=help_text, short_help=self.summary, epilog=self.epilog())

    def epilog(self) -> str:
        parts = ["\b\nNeeds:\n" + "\n".join(f"  {line}" for line in self.needs)]
        parts.append("\b\nExamples:\n" + "\n".join(f"  {line}" for line in self.examples))
        parts.append(self.exits)
        return "\n\n".join(parts)


_FLY = "FLY_API_TOKEN (or FLY_ACCESS_TOKEN)"
_PR = "the PR: --pr N, PREVIEWCTL_PR, or the pull_request event"
_TOOL = words.TOOL_NEED
_TOOL_FOR_TUNNELS = f"{words.TOOL_NEED} when the config has [tunnels]"

COMMANDS: dict[str, CommandHelp] = {
    "plan": CommandHelp(
        summary="Show everything `up` would do (no credentials, no network).",
        body="App, machine config (secrets as ***), IPs, tunnels, steps, Vercel vars and "
        "domains. Also validates previewctl.toml and the machine config.",
        needs=("nothing: no token, no network (a missing ${env.NAME} is shown, not fatal)",),
        examples=(
            "previewctl plan --pr 12",
            "previewctl plan --pr 12 --json",
            "previewctl plan --pr 12 --profile tracing   # what the profile adds",
        ),
        exits="Exit codes: 0 the config is valid, 2 it is not (file:line and key named).",
    ),
    "up": CommandHelp(
        summary="Create or converge the PR's preview and print its URLs.",
        body="App, IPs, one machine (created, updated when the config changed, started when "
        "stopped), a wait until it is healthy, tunnels, [[steps]], Vercel vars and domains, "
        "a GitHub deployment and the PR comment. Idempotent: a repeated run with nothing "
        "changed makes no mutating call. Every missing prerequisite is reported at once, "
        "before anything changes. In a workflow, run `up --no-wait` first so the machine "
        "boots while the runner installs the repository's tooling.",
        needs=(
            _FLY,
            _TOOL_FOR_TUNNELS,
            "VERCEL_TOKEN when the config has [vercel] projects",
            _PR,
            "the branch (for Vercel): --branch, PREVIEWCTL_BRANCH, the event, or looked up",
            "  from GitHub when GITHUB_TOKEN and GITHUB_REPOSITORY are set",
            "every ${env.NAME} the config uses",
            "optional: GITHUB_TOKEN + GITHUB_REPOSITORY for the PR comment and deployment",
        ),
        examples=(
            "previewctl up --no-wait && ...; previewctl up   # in a pull_request workflow",
            "previewctl up --pr 12 --branch feat/login       # from a laptop",
            "previewctl up --pr 12 --profile tracing         # turn a profile on",
        ),
    ),
    "seed": CommandHelp(
        summary="Run the [[seed]] steps against the PR's preview.",
        body="Waits for the branch's newest Vercel deployment to be READY when a seed step "
        "uses ${vercel.PROJECT.url}; opens tunnels only when a seed step uses one.",
        needs=(
            _FLY,
            "VERCEL_TOKEN and the branch when a seed step uses ${vercel.PROJECT.url}",
            words.TOOL + " when a seed step uses ${tunnels.NAME...}",
            _PR,
        ),
        examples=("previewctl seed", "previewctl seed --pr 12 --branch feat/login"),
    ),
    "down": CommandHelp(
        summary="Remove the PR's preview: its Vercel vars, domains and Fly app.",
        body="Only what previewctl made is touched; an already removed preview is success. "
        "Marks the PR's GitHub deployment inactive.",
        needs=(
            _FLY,
            "VERCEL_TOKEN when the config has [vercel] projects",
            _PR,
            "optional: GITHUB_TOKEN + GITHUB_REPOSITORY for the PR comment and deployment",
        ),
        examples=("previewctl down", "previewctl down --pr 12"),
    ),
    "gc": CommandHelp(
        summary="Destroy previews of closed or missing PRs, and stale ones.",
        body="Also sweeps the managed Vercel vars of branches with no open PR. Prints a "
        "table of what it did and why; only previews it manages are touched, and only "
        "what it KNOWS is done goes: a preview whose PR state GitHub did not tell (an "
        "error, a rate limit) or whose machine Fly cannot show is kept as undecided.",
        needs=(
            _FLY,
            "GITHUB_TOKEN + GITHUB_REPOSITORY to learn PR states (else judged by age only)",
            "VERCEL_TOKEN when the config has [vercel] projects",
        ),
        examples=("previewctl gc --dry-run", "previewctl gc --max-age 3d --json"),
        exits="Exit codes: 0 every row decided and done; 1 a row failed or is undecided "
        "(its PR state or machine unknown: kept; a re-run finishes the rest); 2 bad input.",
    ),
    "status": CommandHelp(
        summary="List previews (state, age, cost), or show one with --pr.",
        body="",
        needs=(_FLY,),
        examples=("previewctl status", "previewctl status --pr 12 --json"),
    ),
    "stop": CommandHelp(
        summary="Stop the preview's machine to save cost (`resume` restarts it).",
        body="A stopped machine costs only its storage. Its data is lost (it is ephemeral); "
        "`resume` re-creates it with the steps.",
        needs=(_FLY, "--pr N (or PREVIEWCTL_PR)"),
        examples=("previewctl stop --pr 12",),
    ),
    "resume": CommandHelp(
        summary="Start a stopped preview, re-run [[steps]], hold tunnels open.",
        body='Then, in another shell, `eval "$(previewctl env --pr N)"` gives local tools '
        "the env pointing at the open tunnels.",
        needs=(_FLY, _TOOL, "--pr N (or PREVIEWCTL_PR)"),
        examples=("previewctl resume --pr 12", "previewctl resume --pr 12 --profile tracing"),
        exits="Exit codes: 1 an operation failed or a tunnel died, 2 bad input, "
        "130 interrupted (the normal end: Ctrl-C closes everything).",
    ),
    "tunnel": CommandHelp(
        summary="Open the preview's tunnels in the foreground until Ctrl-C.",
        body="The machine must be started (`previewctl resume` starts it).",
        needs=(_FLY, _TOOL, "--pr N (or PREVIEWCTL_PR)"),
        examples=("previewctl tunnel --pr 12", "previewctl tunnel --pr 12 --json"),
        exits="Exit codes: 1 a tunnel died or an operation failed, 2 bad input, "
        "130 interrupted (the normal end: Ctrl-C).",
    ),
    "env": CommandHelp(
        summary="Print the env for local tools, pointing at the open tunnels.",
        body="Prints only ports where a tunnel really listens: the fixed local ports, or "
        "the live ports of a running `previewctl tunnel`/`resume` for the PR. The values "
        "hold the preview's secrets: they are printed only here, on stdout.",
        needs=(
            _FLY,
            "--pr N (or PREVIEWCTL_PR)",
            "a running `previewctl tunnel --pr N` when a tunnel has local_port = 0",
        ),
        examples=(
            'eval "$(previewctl env --pr 12)"',
            "previewctl env --pr 12 --format dotenv > .env.preview",
        ),
        exits="Exit codes: 0 printed, 1 an operation failed, 2 bad input or no tunnel "
        "listening for a local_port = 0 tunnel.",
    ),
    "init": CommandHelp(
        summary="Write previewctl.toml, the machine config and workflows into DIR.",
        body="Never overwrites a file without --force. Prints what it wrote and what is "
        "left to do.",
        needs=("nothing: no token, no network",),
        examples=("previewctl init", "previewctl init --template postgres ../other-repo"),
        exits="Exit codes: 0 written, 1 a file could not be written, 2 a file exists "
        "(without --force) or bad arguments.",
    ),
    "doctor": CommandHelp(
        summary="Check the whole set-up with read-only calls; every problem at once.",
        body=f"Covers the config, the Fly token and org, {words.TOOL}, each Vercel project and "
        "its domain's parent on the team, and the GitHub token.",
        needs=(
            "the tokens it checks: FLY_API_TOKEN, VERCEL_TOKEN, GITHUB_TOKEN (each missing "
            "one is reported)",
        ),
        examples=("previewctl doctor", "previewctl doctor --json"),
        exits="Exit codes: 0 all pass, 1 something will fail (each with a hint), "
        "2 a bad command line.",
    ),
}


def for_command(name: str) -> CommandKwargs:
    return COMMANDS[name].kwargs()
