"""Tables and lines as plain text: what status and gc print."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table
from rich.text import Text


def money(value: float) -> str:
    return f"${value:,.2f}" if value >= 0.01 or value == 0 else f"${value:.4f}"


def plain_row(table: Table, *cells: str) -> None:
    """Cells are data, not rich markup: an error's ``[request id …]`` must print as is."""
    table.add_row(*(Text(cell) for cell in cells))


def render_text(*parts: Table | str) -> str:
    """Tables and plain lines as text, 120 columns wide, without trailing blanks."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=120, no_color=True, highlight=False)
    for part in parts:
        if isinstance(part, str):
            console.print(part, markup=False)
        else:
            console.print(part)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"
