"""The documentation a clone ships: a short README, and relative links that lead somewhere.

No server, Redis or database: these read files only.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README_MAX_LINES = 200

# [text](target) and [text](target "title"); images too. Reference-style definitions: [id]: target
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.MULTILINE)
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")


def documents() -> list[Path]:
    found = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").rglob("*.md"))]
    return [path for path in found if path.is_file()]


def relative_links(text: str) -> list[str]:
    """Link targets that point into the repository: no scheme, no mail, no bare #anchor."""
    text = INLINE_CODE.sub("", FENCE.sub("", text))
    targets = INLINE_LINK.findall(text) + REFERENCE_LINK.findall(text)
    return [t for t in targets if not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", t) and not t.startswith("#")]


def test_readme_is_short() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; at most {README_MAX_LINES}"


def test_changelog_and_docs_exist() -> None:
    assert (ROOT / "CHANGELOG.md").is_file()
    assert (ROOT / "docs").is_dir()


@pytest.mark.parametrize("doc", documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc: Path) -> None:
    broken = []
    for target in relative_links(doc.read_text(encoding="utf-8")):
        path = target.split("#", 1)[0].split("?", 1)[0]
        resolved = (doc.parent / path).resolve()
        if not resolved.exists() or not resolved.is_relative_to(ROOT):
            broken.append(target)
    assert not broken, f"{doc.relative_to(ROOT)}: links to nothing in the repository: {broken}"


def test_link_finder_sees_what_a_reader_sees() -> None:
    text = (
        "[a](docs/api.md) [b](docs/api.md#events) [c](https://example.org) [d](#top) "
        "[e](mailto:x@example.org) ![f](img.png 'x') `[g](not/a/link.md)`\n"
        "```\n[h](also/not.md)\n```\n[ref]: docs/cache.md\n"
    )
    assert relative_links(text) == ["docs/api.md", "docs/api.md#events", "img.png", "docs/cache.md"]
