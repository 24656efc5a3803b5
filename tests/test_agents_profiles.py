"""The agents config's shipped profiles (tracing, nango) and the workflow that turns them
on and off by PR label.

The workflow's job conditions are evaluated, not just read: a small evaluator of GitHub's
expression language (the operators, `contains`, `startsWith`, `fromJSON`, null property
access and case-insensitive string comparison, as GitHub documents them) runs each `if:`
against the events GitHub sends.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = [
    ROOT / ".github" / "workflows" / "preview.yml",
    ROOT / "src" / "previewctl" / "templates" / "workflows" / "preview.yml",
]

# ---- a GitHub Actions expression evaluator (the subset the workflows use) ------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<op>&&|\|\||==|!=|!|\(|\)|,)"
    r"|(?P<num>-?\d+(?:\.\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_.\-\[\]*]*))"
)


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        assert match, f"cannot read the expression at {text[pos:]!r}"
        assert match.end() > pos, f"cannot read the expression at {text[pos:]!r}"
        kind = match.lastgroup
        assert kind is not None
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


def _lookup(context: dict[str, Any], path: str) -> Any:
    value: Any = context
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.casefold() == b.casefold()  # GitHub compares strings ignoring case
    return bool(a == b)


def _call(name: str, args: list[Any]) -> Any:
    if name == "fromJSON":
        return json.loads(args[0])
    if name == "startsWith":
        return _text(args[0]).casefold().startswith(_text(args[1]).casefold())
    if name == "contains":
        haystack, needle = args
        if isinstance(haystack, list):
            return any(_equal(item, needle) for item in haystack)
        return _text(needle).casefold() in _text(haystack).casefold()
    raise AssertionError(f"function {name} is not in this evaluator")


class _Parser:
    def __init__(self, text: str, context: dict[str, Any]) -> None:
        self.tokens, self.i, self.context = _tokens(text), 0, context

    def peek(self) -> str | None:
        return self.tokens[self.i][1] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        self.i += 1
        return self.tokens[self.i - 1]

    def parse(self) -> Any:
        value = self.or_()
        assert self.i == len(self.tokens), f"unread tokens: {self.tokens[self.i :]}"
        return value

    def or_(self) -> Any:
        value = self.and_()
        while self.peek() == "||":
            self.take()
            right = self.and_()
            value = value or right
        return value

    def and_(self) -> Any:
        value = self.equality()
        while self.peek() == "&&":
            self.take()
            right = self.equality()
            value = value and right
        return value

    def equality(self) -> Any:
        value = self.unary()
        while self.peek() in ("==", "!="):
            op = self.take()[1]
            right = self.unary()
            value = _equal(value, right) if op == "==" else not _equal(value, right)
        return value

    def unary(self) -> Any:
        if self.peek() == "!":
            self.take()
            return not self.unary()
        return self.primary()

    def primary(self) -> Any:
        kind, text = self.take()
        if text == "(":
            value = self.or_()
            assert self.take()[1] == ")"
            return value
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if kind == "num":
            return float(text)
        if text in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[text]
        if self.peek() == "(":
            self.take()
            args: list[Any] = []
            while self.peek() != ")":
                args.append(self.or_())
                if self.peek() == ",":
                    self.take()
            self.take()
            return _call(text, args)
        return _lookup(self.context, text)


def evaluate(expression: str, context: dict[str, Any]) -> bool:
    return bool(_Parser(expression, context).parse())


def test_the_evaluator_follows_githubs_rules() -> None:
    ctx = {"github": {"event": {"action": "Labeled", "label": {"name": "Preview:Tracing"}}}}
    assert evaluate("github.event.action == 'labeled'", ctx)  # strings ignore case
    assert evaluate("startsWith(github.event.label.name, 'preview:')", ctx)
    assert not evaluate("startsWith(github.event.missing.name, 'preview:')", ctx)  # null -> ''
    assert evaluate('contains(fromJSON(\'["a", "labeled"]\'), github.event.action)', ctx)
    assert not evaluate("!(true && !false) || false", ctx)
    assert evaluate("'it''s' == 'IT''S'", ctx)


# ---- the workflow's reaction to labels -----------------------------------------------------

REPO = "acme/app"


def _event(action: str, *, label: str | None = None, state: str = "open") -> dict[str, Any]:
    event: dict[str, Any] = {
        "action": action,
        "pull_request": {
            "number": 7,
            "state": "closed" if action == "closed" else state,
            "head": {"ref": "feature", "repo": {"full_name": REPO}},
            "labels": [{"name": "preview:tracing"}],
        },
    }
    if label is not None:
        event["label"] = {"name": label}
    return {"github": {"event": event, "repository": REPO, "actor": "octocat"}}


def _jobs(path: Path) -> dict[str, Any]:
    jobs = yaml.safe_load(path.read_text())["jobs"]
    assert isinstance(jobs, dict)
    return jobs


def _runs(path: Path, context: dict[str, Any]) -> set[str]:
    return {name for name, job in _jobs(path).items() if evaluate(str(job["if"]), context)}


@pytest.mark.parametrize("path", WORKFLOWS, ids=["repo", "template"])
def test_the_workflow_listens_to_label_changes(path: Path) -> None:
    on = yaml.safe_load(path.read_text())
    types = on.get("on", on.get(True))["pull_request"]["types"]
    assert {"labeled", "unlabeled"} <= set(types)


@pytest.mark.parametrize("path", WORKFLOWS, ids=["repo", "template"])
@pytest.mark.parametrize(
    ("context", "jobs"),
    [
        pytest.param(_event("opened"), {"up"}, id="opened"),
        pytest.param(_event("synchronize"), {"up"}, id="synchronize"),
        pytest.param(_event("reopened"), {"up"}, id="reopened"),
        # a reviewer adds or removes a profile's label: up runs and converges the set
        pytest.param(_event("labeled", label="preview:tracing"), {"up"}, id="add-tracing"),
        pytest.param(_event("unlabeled", label="preview:tracing"), {"up"}, id="remove-tracing"),
        pytest.param(_event("labeled", label="preview:nango"), {"up"}, id="add-nango"),
        # a label no profile has changes nothing: no job at all
        pytest.param(_event("labeled", label="bug"), set(), id="add-other-label"),
        pytest.param(_event("unlabeled", label="needs review"), set(), id="remove-other-label"),
        # labelling a closed PR must not bring its preview back
        pytest.param(
            _event("labeled", label="preview:tracing", state="closed"), set(), id="label-closed-pr"
        ),
        pytest.param(_event("closed"), {"down"}, id="closed"),
    ],
)
def test_which_jobs_an_event_starts(path: Path, context: dict[str, Any], jobs: set[str]) -> None:
    assert _runs(path, context) == jobs


@pytest.mark.parametrize("path", WORKFLOWS, ids=["repo", "template"])
def test_label_events_keep_the_fork_and_dependabot_guards(path: Path) -> None:
    fork = _event("labeled", label="preview:tracing")
    fork["github"]["event"]["pull_request"]["head"]["repo"]["full_name"] = "someone/fork"
    assert _runs(path, fork) == set()
    bot = _event("labeled", label="preview:tracing")
    bot["github"]["actor"] = "dependabot[bot]"
    assert _runs(path, bot) == set()
