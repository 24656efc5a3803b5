"""The command line. Typer lives only in this package; work happens in previewctl.ops."""

from previewctl.cli.main import main

__all__ = ["main"]
