"""The index fails the maintainer after locking: unreachable, or a locked release yanked. `make ve` never asks it.
And the index's upload times: the cooling-off (COOLDOWN_DAYS) over an HTTP index on 127.0.0.1 that serves them
(tests/supply_helpers.py), or does not.

Built on tests/test_freeze.py's fixtures: a checkout frozen against an index in tmp_path, one copy per test.
"""

import datetime
import json
import os

import pytest

from bootstrap_tools import provenance, pylock
from conftest import assert_ok, assert_one_error, built, describe, diff_digests, run_make
from supply_helpers import HttpIndex, days_ago
from test_freeze import (  # noqa: F401 (fixtures by name)
    PAYLOAD_BYTES, THIS_PYTHON, base, managed_digest, payload_wheels, project,
)

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


# --- the cooling-off: upload times ---------------------------------------------------------------------------


def day(text):
    return text[:10]


@pytest.fixture
def http_index(project):  # noqa: F811
    """Serves the project's index over HTTP: every file uploaded 30 days ago unless the test says otherwise."""
    served = []

    def start(**kwargs):
        served.append(HttpIndex(project.index.files, **kwargs))
        return served[-1]

    yield start
    for index in served:
        index.close()


def freeze(project, target, index, *args):  # noqa: F811
    return project.make(target, f"INDEX_URL={index.url}", f"TARGET_PYTHONS={THIS_PYTHON}", *args)


def record_entries(project):  # noqa: F811
    return {entry["path"]: entry for entry in json.loads(project.read(provenance.RECORD))["artifacts"]}


@slow
def test_freeze_upgrade_holds_back_yesterdays_release_and_records_where_files_came_from(project,  # noqa: F811
                                                                                        http_index):
    project.index.add("alpha", "2.0")
    beta_time, yesterday = days_ago(20), days_ago(1)
    index = http_index(times={"alpha-2.0-py3-none-any.whl": yesterday, "beta-1.1-py3-none-any.whl": beta_time})
    project.requirements_in(add=["beta"])
    result = assert_ok(freeze(project, "freeze-upgrade", index, "INDEX_NAME=fixture", PAYLOAD_BYTES))
    pins = project.pins()
    # alpha 2.0 is the newest, but uploaded yesterday: the cooling-off (7 days by default) takes the one before.
    assert (pins["alpha"].version, pins["beta"].version) == ("1.0", "1.1")
    text = project.report_file()
    assert text in result.stdout
    assert f"  held back: alpha 2.0 (uploaded {day(yesterday)}" in text, text
    assert f"  uploaded:  beta 1.1 on {day(beta_time)}" in text, text

    entries = record_entries(project)
    beta = entries["requirements/beta-1.1-py3-none-any.whl"]
    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    assert (beta["index"], beta["upload-time"], beta["fetched"]) == ("fixture", beta_time, today), beta
    assert beta["size"] == os.path.getsize(project.path / "requirements" / "beta-1.1-py3-none-any.whl")
    assert not any("127.0.0.1" in line for line in project.read(provenance.RECORD).splitlines())
    assert f"upload-time = {beta_time}" in project.read(pylock.NAME)
    assert_ok(project.make("check"))

    # A freeze that changes nothing keeps both files byte for byte: no date churn.
    record, lock = project.read(provenance.RECORD), project.read(pylock.NAME)
    result = assert_ok(freeze(project, "freeze", index, "INDEX_NAME=fixture"))
    assert "Pins (requirements.txt):\n  no change" in result.stdout, describe(result)
    assert (project.read(provenance.RECORD), project.read(pylock.NAME)) == (record, lock)


@slow
def test_an_index_without_upload_times_stops_the_cooling_off_with_one_clear_error(project, http_index):  # noqa: F811
    index = http_index(with_times=False)
    project.requirements_in(add=["beta"])
    before = managed_digest(project.path)
    result = freeze(project, "freeze", index)
    assert_one_error(result, "does not serve", "upload", "COOLDOWN_DAYS=0", "Nothing was changed")
    assert diff_digests(before, managed_digest(project.path)) == []
    # The way on the message names works.
    assert_ok(freeze(project, "freeze", index, "COOLDOWN_DAYS=0"))
    assert project.pins()["beta"].version == "1.1"


@slow
def test_a_cooldown_days_0_upgrade_does_not_turn_the_cooling_off_off_for_later_runs(project, http_index):  # noqa: F811
    project.index.add("alpha", "2.0")
    project.index.add("beta", "1.2", requires=["gamma>=1.0"])
    an_hour_ago, two_hours_ago = days_ago(1 / 24), days_ago(2 / 24)
    index = http_index(times={"alpha-2.0-py3-none-any.whl": an_hour_ago,
                              "beta-1.2-py3-none-any.whl": two_hours_ago})
    assert_ok(freeze(project, "freeze-upgrade", index, "PACKAGES=alpha", "COOLDOWN_DAYS=0"))
    assert project.pins()["alpha"].version == "2.0"

    # A later freeze with the default cooling-off: alpha 2.0 stays (its file in requirements/ is offered to
    # pip-compile), and the cutoff is still now minus 7 days for what is resolved anew: beta 1.2 stays out.
    project.requirements_in(add=["beta"])
    result = assert_ok(freeze(project, "freeze", index))
    assert "uploaded after the cutoff (alpha 2.0): offered to pip-compile" in result.stdout, describe(result)
    assert "not earlier than the newest file" not in result.stdout, describe(result)
    pins = project.pins()
    assert (pins["alpha"].version, pins["beta"].version) == ("2.0", "1.1"), describe(result)

    result = assert_ok(freeze(project, "freeze-upgrade", index, "PACKAGES=beta"))
    pins = project.pins()
    assert (pins["alpha"].version, pins["beta"].version) == ("2.0", "1.1"), describe(result)
    assert "Pins (requirements.txt):\n  no change" in result.stdout, describe(result)
    assert f"  held back: beta 1.2 (uploaded {day(two_hours_ago)}" in project.report_file()
    assert_ok(project.make("check"))


@slow
def test_a_hand_edited_provenance_record_never_steers_the_freeze_nor_is_resealed(project, http_index):  # noqa: F811
    project.index.add("beta", "1.2", requires=["gamma>=1.0"])
    two_hours_ago = days_ago(2 / 24)
    index = http_index(times={"beta-1.2-py3-none-any.whl": two_hours_ago})
    path = project.path / provenance.RECORD
    data = json.loads(path.read_text(encoding="utf-8"))
    alpha = next(entry for entry in data["artifacts"] if entry["path"].startswith("requirements/alpha-1.0"))
    alpha.update({"upload-time": "2099-01-01T00:00:00Z", "index": "planted", "fetched": "2000-01-01"})
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    assert_one_error(project.make("check"), "1 problem")

    project.requirements_in(add=["beta"])
    result = assert_ok(freeze(project, "freeze", index, "INDEX_NAME=fixture"))
    assert "was edited by hand" in result.stdout and "recording every file anew from fixture" in result.stdout, \
        describe(result)
    assert "  re-recorded: " in project.report_file(), project.report_file()
    assert project.pins()["beta"].version == "1.1", describe(result)
    record, lock = project.read(provenance.RECORD), project.read(pylock.NAME)
    for planted in ("2099", "planted", "2000-01-01"):
        assert planted not in record and planted not in lock, planted
    alpha = record_entries(project)[alpha["path"]]
    assert (alpha["index"], alpha["upload-time"]) == ("fixture", index.default), alpha
    assert_ok(project.make("check"))
