"""Relative links in README.md and docs/*.md point at files (and headings) that exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set:
    found = set()
    in_code = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            found.add(slug(line.lstrip("#")))
    return found


def test_relative_links_resolve():
    pages = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
    broken = []
    for page in pages:
        text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
        for target in LINK.findall(text):
            if re.match(r"^[a-z]+:", target):
                continue
            file_part, _sep, anchor = target.partition("#")
            dest = (page.parent / file_part).resolve() if file_part else page
            if not dest.exists():
                broken.append("%s: %s (no such file)" % (page.relative_to(ROOT), target))
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                broken.append("%s: %s (no such heading)" % (page.relative_to(ROOT), target))
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_the_user_guide_covers_what_a_newcomer_needs():
    guide = (ROOT / "docs" / "user-guide.md").read_text(encoding="utf-8")
    for topic in ("keys.md", "providers.md", "policy.md", "monitoring.md", "disaster-recovery.md",
                  "troubleshooting.md", "offsite_backup", "offsite_restore", "Schedule", "module_defaults"):
        assert topic in guide, topic
