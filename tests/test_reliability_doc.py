"""Every row of docs/reliability.md names tests that exist (so the table cannot rot)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_every_named_test_exists() -> None:
    text = (ROOT / "docs" / "reliability.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and "`tests/" in line]
    assert len(rows) >= 20
    for row in rows:
        test_cell = [cell for cell in row.split("|") if cell.strip()][-1]
        names = re.findall(r"`(tests/[^`:]+\.py)(?:::(\w+))?`|`::(\w+)`", test_cell)
        assert names, row
        current_file: Path | None = None
        for file, test, sibling in names:
            if file:
                current_file = ROOT / file
                assert current_file.is_file(), file
            name = test or sibling
            if name:
                assert current_file is not None
                assert re.search(rf"^def {name}\(", current_file.read_text(), re.M), (
                    f"{name} not in {current_file}"
                )
