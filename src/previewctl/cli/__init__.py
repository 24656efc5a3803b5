"""The command line. Typer lives only in this package; work happens in previewctl.ops.

:func:`main` is the console script. It takes over SIGINT, SIGTERM and SIGHUP before it
loads anything heavy (Typer, pydantic, httpx: about 100 ms), so an interrupt that lands
while previewctl is still loading exits 130 like any other. Only the interpreter's own
start-up, before this runs, is left to the signals' defaults; nothing has been started
then.
"""

from __future__ import annotations

import sys


def main() -> None:
    from previewctl.cli import process_exit  # the standard library only: quick

    process_exit.install()
    try:
        from previewctl.cli.main import main as run

        run()
    except KeyboardInterrupt:  # before run() took over: nothing was started yet
        sys.stderr.write("interrupted: everything previewctl started has been stopped\n")
        raise SystemExit(130) from None
    finally:
        process_exit.ignore_interrupts_if_interrupted()


__all__ = ["main"]
