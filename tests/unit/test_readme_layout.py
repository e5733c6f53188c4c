"""The README's Layout table matches the tree (issue 15: a new maintainer reads it first): every
module of pyoci/ and every tool is named there, and every file it names exists."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def layout_names() -> set[str]:
    """File names in the Layout section; a row may name `dir/a.py`, then `b.py` (same dir)."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Layout") :]
    section = section[: section.index("\n## ", 1)]
    return {Path(name).name for name in re.findall(r"`([\w/.\-]+\.(?:py|c|sh))`", section)}


def tree_files() -> set[Path]:
    modules = {p for p in (REPO / "pyoci").rglob("*.py") if p.name != "__init__.py"}
    return modules | {p for p in (REPO / "tools").iterdir() if p.is_file()}


def test_every_module_and_tool_is_in_the_layout_table() -> None:
    named = layout_names()
    missing = sorted(str(p.relative_to(REPO)) for p in tree_files() if p.name not in named)
    assert not missing, f"not in README's Layout table: {missing}"


def test_every_file_the_layout_table_names_exists() -> None:
    existing = {p.name for p in tree_files()}
    existing |= {
        p.name
        for pattern in ("pyoci/**/*.c", "tests/**/*.py")
        for p in REPO.glob(pattern)
        if ".venv" not in p.parts
    }
    stale = sorted(name for name in layout_names() if name not in existing)
    assert not stale, f"README's Layout table names files that are gone: {stale}"
