"""The README stays a newcomer's page (at most 15 KB) and every relative link in it and in docs/ leads somewhere:
to a file that exists and, when the link names an anchor, to a heading of that file as the hosting renders it."""

import re

import pytest

from conftest import REPO

README_LIMIT = 15 * 1024
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def prose(text):
    """The text outside fenced code blocks and inline code spans: links and headings in code are examples."""
    outside, fence = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fence = not fence
            continue
        if not fence:
            outside.append(re.sub(r"`[^`]*`", "", line))
    return outside


def slug(heading):
    """The anchor a heading gets when rendered: lower case, punctuation dropped, spaces become hyphens."""
    text = heading.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(text):
    found, seen = set(), {}
    fence = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fence = not fence
            continue
        match = None if fence else re.match(r"^#{1,6} +(.*?)#* *$", line)
        if match:
            base = slug(match.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(text):
    return [target for line in prose(text) for target in LINK.findall(line)]


def test_the_readme_is_at_most_15_kb():
    size = len((REPO / "README.md").read_bytes())
    assert size <= README_LIMIT, f"README.md is {size:,} bytes; move detail to docs/ (limit {README_LIMIT:,})"


def test_every_docs_page_starts_with_a_title_and_a_summary():
    for path in PAGES[1:]:
        lines = path.read_text(encoding="utf-8").splitlines()
        assert lines[0].startswith("# "), f"{path.name}: no title on its first line"
        first_paragraph = next((line for line in lines[1:] if line.strip()), "")
        assert first_paragraph and not first_paragraph.startswith(("#", "|", "```", "-")), \
            f"{path.name}: the title is not followed by a summary paragraph"


@pytest.mark.parametrize("path", PAGES, ids=lambda path: str(path.relative_to(REPO)))
def test_every_relative_link_resolves_to_a_file_and_heading(path):
    broken = []
    for target in links(path.read_text(encoding="utf-8")):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):
            continue
        file_part, _, anchor = target.partition("#")
        destination = (path.parent / file_part).resolve() if file_part else path
        if not destination.exists():
            broken.append(f"{target}: no such file")
        elif anchor and (destination.suffix != ".md" or anchor not in anchors(destination.read_text(encoding="utf-8"))):
            broken.append(f"{target}: no heading with the anchor #{anchor} in {destination.name}")
    assert not broken, f"{path.relative_to(REPO)}: " + "; ".join(broken)


def test_the_link_checker_sees_links_and_anchors():
    page = ("# A `make ve` title: here\n\nsee [x](other.md#two) and `[not](a-link.md)`\n\n"
            "```\n[not](either.md)\n## Not a heading\n```\n## Two\n## Two\n")
    assert links(page) == ["other.md#two"]
    assert anchors(page) == {"a-make-ve-title-here", "two", "two-1"}
