"""The architecture pages name files a reader can open: a renamed or deleted module fails here
rather than leaving docs/ARCHITECTURE.md or docs/FLOWS.md quietly untrue."""

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = ("docs/ARCHITECTURE.md", "docs/FLOWS.md")
# A code path in backquotes: a directory or a file of ours (templates with `{`, globs with `*`
# and topic names are not paths).
PATH_IN_TICKS = re.compile(r"`([a-z_][\w./-]*/[\w.-]*)`")
SUFFIXES = (".py", ".sql", ".yml", ".yaml", ".md", "/")


def tracked_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return listed.split()


def named_paths(page: str) -> set[str]:
    text = (ROOT / page).read_text()
    return {p for p in PATH_IN_TICKS.findall(text) if p.endswith(SUFFIXES)}


def resolves(path: str, files: list[str]) -> bool:
    """A page may shorten a path after naming its package once (`titles/store.py`)."""
    if path.endswith("/"):
        return any(f.startswith(path) or f"/{path}" in f"/{f}" for f in files)
    return any(f == path or f.endswith(f"/{path}") for f in files)


@pytest.mark.parametrize("page", PAGES)
def test_every_file_a_page_names_exists(page: str) -> None:
    files = tracked_files()
    paths = named_paths(page)
    assert len(paths) > 20, f"{page} should name the files it walks through"
    missing = sorted(p for p in paths if not resolves(p, files))
    assert not missing, f"{page} names files that do not exist: {missing}"


def test_a_missing_file_is_noticed() -> None:
    assert not resolves("agents/titles/gone.py", tracked_files())
