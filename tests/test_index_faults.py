"""The index fails the maintainer after locking: unreachable, or a locked release yanked. `make ve` never asks it.

Built on tests/test_freeze.py's fixtures: a checkout frozen against an index in tmp_path, one copy per test.
"""

import pytest

from conftest import assert_ok, assert_one_error, built, describe, diff_digests, run_make
from test_freeze import base, managed_digest, payload_wheels, project  # noqa: F401 (fixtures used by name)

slow = pytest.mark.slow


class Unreachable:
    """An index URL nothing listens on (the discard port of this machine's loopback)."""
    url = "http://127.0.0.1:9/simple/"


@slow
def test_an_unreachable_index_fails_the_freeze_with_one_error_and_changes_nothing(project):  # noqa: F811
    project.index = Unreachable()
    project.requirements_in(add=["beta"])
    before = managed_digest(project.path)
    result = project.freeze()
    assert_one_error(result, "Nothing was changed")
    assert diff_digests(before, managed_digest(project.path)) == []
    # The deploy side never needs the index: the ve still builds from the checkout alone, with no network.
    built(run_make(project.path, "ve", "FORCE=1", prefix=("unshare", "-n")))


def yank(index, name, version):
    """Mark a release yanked on its project page (PEP 592's data-yanked), as an index does after locking."""
    page = index.simple / name / "index.html"
    text = page.read_text()
    marked = text.replace(f">{name}-{version}-", f' data-yanked="broken release">{name}-{version}-')
    assert marked != text, text
    page.write_text(marked)


@slow
def test_a_release_yanked_after_locking(project):  # noqa: F811
    yank(project.index, "alpha", "1.0")
    before = managed_digest(project.path)
    # make ve is offline: a yank on the index changes nothing for a deploy host.
    built(run_make(project.path, "ve", "FORCE=1", prefix=("unshare", "-n")))
    # make freeze keeps the pin: an exact pin may still select a yanked release (PEP 592), and the artifact is in
    # requirements/ already. Nothing tells the maintainer yet (see docs/reliability.md).
    result = assert_ok(project.freeze())
    assert "Pins (requirements.txt):\n  no change" in result.stdout, describe(result)
    assert diff_digests(before, managed_digest(project.path)) == []
