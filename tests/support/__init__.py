"""Helpers shared by the tests and bench/: projects, the installed CLI, checks, stacks.

Tests and bench scripts import these (and the fakes in ``tests.fakes``); nothing imports
a test module or ``conftest``, which holds only fixtures built from these.
"""
