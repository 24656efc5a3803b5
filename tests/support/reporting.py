"""A reporter for tests: previewctl's progress written into a buffer, and read back."""

from __future__ import annotations

import io

from previewctl.actions import GitHubActions
from previewctl.reporter import Reporter


def quiet_reporter(*, verbose: bool = False) -> Reporter:
    return Reporter(actions=GitHubActions({}), stream=io.StringIO(), verbose=verbose)


def output(reporter: Reporter) -> str:
    """Everything ``reporter`` wrote so far."""
    assert isinstance(reporter.stream, io.StringIO)
    return reporter.stream.getvalue()
