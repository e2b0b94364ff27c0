"""The lock against the Makefile's platform settings (issue 26, items 7, 12 and 13): a hand-edited descriptor, a
lock header that is not the Makefile's TARGET_PYTHONS / TARGET_PLATFORMS, a name given twice, and the one glibc
floor (GLIBC_FLOOR) of every Linux platform.

One copy of this checkout with its ve is shared by the scenarios (each puts back what it changes); the freeze
runs against an index in tmp_path. Nothing here needs the network.
"""

import json
import shutil
import subprocess
import sys

import pytest

from conftest import (
    REPO, TIMEOUT, assert_ok, assert_one_error, built, copy_checkout, describe, make_argv, make_env, restored, run_make,
)
from index_helpers import Index, build_wheel
from bootstrap_tools import lockfile, platforms
from bootstrap_tools.run import ToolError

slow = pytest.mark.slow

THIS_PYTHON = "%d.%d" % sys.version_info[:2]
DECLARED = "linux-x86_64 linux-aarch64 macos-arm64"  # this repository's Makefile
# Nothing listens there: a freeze that reaches the index in these scenarios fails loudly instead of refusing.
NO_INDEX = "INDEX_URL=http://127.0.0.1:9/simple/"


@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    path = copy_checkout(tmp_path_factory.mktemp("platform-settings") / "checkout")
    built(run_make(path, "ve"))
    return path


def make(path, *args):
    """`make ARGS` with exactly these settings: the Makefile's unless named here (not the lock's, as run_make
    gives a check)."""
    return subprocess.run(make_argv(*args), cwd=path, env=make_env(), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, errors="replace", timeout=TIMEOUT)


def problems(result):
    return [line for line in result.stdout.splitlines() if line.startswith("  - ")]


def one_problem(result, *needles):
    assert_one_error(result, "make check found 1 problem(s)")
    found = problems(result)
    assert len(found) == 1, describe(result)
    for needle in needles:
        assert needle in found[0], f"{needle!r} not in {found[0]!r}"
    return found[0]


@slow
def test_a_hand_edited_generated_descriptor_is_named_by_check_and_refused_by_freeze(checkout):
    assert_ok(make(checkout, "check"))
    path = checkout / "platforms" / "linux-aarch64.json"
    with restored(path):
        descriptor = json.loads(path.read_text())
        descriptor["environment"].update(sys_platform="win32", platform_machine="AMD64", platform_system="Windows")
        path.write_text(platforms.render(descriptor))
        one_problem(make(checkout, "check"), "platforms/linux-aarch64.json is not what `make platforms` generates",
                    "run `make platforms`")
        lock = (checkout / "requirements.txt").read_bytes()
        assert_one_error(make(checkout, "freeze", NO_INDEX, f"TARGET_PLATFORMS={DECLARED}"),
                         "platforms/linux-aarch64.json", "run `make platforms`", "Nothing was changed")
        assert (checkout / "requirements.txt").read_bytes() == lock
        # Relabelled as recorded: a recorded descriptor cannot be regenerated, but its platform's facts still hold.
        descriptor["how"] = "record"
        path.write_text(platforms.render(descriptor))
        one_problem(make(checkout, "check"), "platforms/linux-aarch64.json gives platform_machine='AMD64'",
                    "`git checkout -- platforms/linux-aarch64.json`")
        path.unlink()
        assert_ok(make(checkout, "platforms"))
        assert path.read_text() == (REPO / "platforms" / "linux-aarch64.json").read_text()
        assert_ok(make(checkout, "check"))


@slow
def test_check_compares_the_lock_header_with_the_makefile_and_freeze_refuses_a_name_given_twice(checkout):
    one_problem(make(checkout, "check", "TARGET_PYTHONS=3.11 3.12 3.13"),
                'locked for TARGET_PYTHONS="3.10 3.11 3.12 3.13"', 'TARGET_PYTHONS is "3.11 3.12 3.13" here',
                "run `make freeze`")
    makefile = checkout / "Makefile"
    with restored(makefile):
        makefile.write_text(makefile.read_text().replace(f"TARGET_PLATFORMS := {DECLARED}",
                                                         "TARGET_PLATFORMS := linux-x86_64 macos-arm64"))
        one_problem(make(checkout, "check"), f'locked for TARGET_PLATFORMS="{DECLARED}"',
                    'TARGET_PLATFORMS is "linux-x86_64 macos-arm64" here')
    # Another floor: the lock and the generated Linux descriptor were made for the old one, and the fixes say so.
    result = make(checkout, "check", "GLIBC_FLOOR=2.31")
    assert_one_error(result, "make check found 2 problem(s)")
    assert "locked for GLIBC_FLOOR=2.28" in problems(result)[0], describe(result)
    assert "run `make platforms`, then `make freeze`" in problems(result)[0], describe(result)
    assert problems(result)[1].startswith("  - platforms/linux-aarch64.json is not what `make platforms` generates"), \
        describe(result)
    lock = (checkout / "requirements.txt").read_bytes()
    for setting in ("TARGET_PLATFORMS=linux-x86_64 macos-arm64 linux-x86_64", f"TARGET_PYTHONS={THIS_PYTHON} "
                    f"{THIS_PYTHON}"):
        name = setting.split("=")[0]
        assert_one_error(make(checkout, "freeze", NO_INDEX, setting), f"{name}=", "more than once",
                         f"name each once in {name}")
    assert_one_error(make(checkout, "freeze", NO_INDEX, "GLIBC_FLOOR=2.x"), "GLIBC_FLOOR=2.x is not a glibc version")
    assert (checkout / "requirements.txt").read_bytes() == lock


@slow
def test_one_glibc_floor_cuts_a_recorded_descriptor_and_check_names_a_wheel_above_it(checkout, tmp_path):
    """A recorded descriptor from a newer host offers what the floor rules out; `make platforms` cuts it; the
    freeze takes the wheel for the floor, states the floor, and `make check` names a wheel above it."""
    path = checkout / "platforms" / "linux-x86_64.json"
    descriptor = json.loads(path.read_text())
    assert descriptor["how"] == "record"
    assert not [tag for tag in descriptor["platforms"] if platforms.above_floor(tag, "2.28")]
    newer = dict(descriptor, platforms=["manylinux_2_34_x86_64", *descriptor["platforms"]])
    with restored(path):
        path.write_text(platforms.render(newer))
        one_problem(make(checkout, "check"), "platforms/linux-x86_64.json (recorded) offers manylinux tags up to "
                    "glibc 2.34, above the glibc floor 2.28", "run `make platforms`")
        assert_ok(make(checkout, "platforms"))
        assert path.read_text() == platforms.render(descriptor)

    index = Index(tmp_path / "index")
    for wheel in sorted((REPO / "requirements").glob("*.whl")):
        index.add_file(wheel)
    interpreter = "cp" + THIS_PYTHON.replace(".", "")
    made = {}
    for glibc in ("2_28", "2_34"):
        made[glibc] = build_wheel(tmp_path / "made", "binpkg", "1.0",
                                  tag=f"{interpreter}-{interpreter}-manylinux_{glibc}_x86_64")
        index.add_file(made[glibc])
    names = ("requirements.in", "requirements.txt", "requirements.pins")
    requirements_in, lock, pins = (checkout / name for name in names)
    wheelhouse = checkout / "requirements"
    shutil.copytree(wheelhouse, tmp_path / "wheelhouse")
    dev_set = (checkout / "requirements-dev.in", checkout / "requirements-dev.txt")
    saved = [requirements_in, lock, pins, *dev_set, checkout / "pylock.toml", checkout / "requirements-provenance.json"]
    settings = (f"TARGET_PYTHONS={THIS_PYTHON}", "TARGET_PLATFORMS=linux-x86_64")
    try:
        with restored(*saved):
            for path in dev_set:  # the floor is the runtime set's story: one pip-compile run, not two
                path.unlink()
            requirements_in.write_text(requirements_in.read_text() + "binpkg\n")
            result = assert_ok(make(checkout, "freeze", f"INDEX_URL={index.url}", *settings))
            assert "(Linux: glibc 2.28 and newer, GLIBC_FLOOR)" in result.stdout, describe(result)
            assert "  glibc floor (GLIBC_FLOOR): 2.28: every Linux wheel in the lock runs on glibc 2.28" \
                in result.stdout, describe(result)
            assert lockfile.glibc_floor(lock.read_text()) == "2.28"
            assert (wheelhouse / made["2_28"].name).exists() and not (wheelhouse / made["2_34"].name).exists()
            assert_ok(make(checkout, "check", *settings))
            (wheelhouse / made["2_34"].name).write_bytes(made["2_34"].read_bytes())
            result = make(checkout, "check", *settings)
            assert_one_error(result, "problem(s)")
            assert [line for line in problems(result) if line.startswith(
                f"  - requirements/{made['2_34'].name} needs glibc 2.34, above the lock's glibc floor 2.28")], \
                describe(result)
    finally:
        shutil.rmtree(wheelhouse)
        shutil.copytree(tmp_path / "wheelhouse", wheelhouse)
    assert_ok(make(checkout, "check"))


# --- units -------------------------------------------------------------------------------------------------------


def test_the_floor_tops_generated_descriptors_and_cuts_recorded_ones_never_raising_them():
    generated = platforms.generated("linux-x86_64", ["3.12"], "2.31")
    assert generated["platforms"][:2] == ["manylinux_2_31_x86_64", "manylinux_2_30_x86_64"]
    assert platforms.generated("linux-aarch64", ["3.12"]) == platforms.generated("linux-aarch64", ["3.12"], "2.28")
    recorded = dict(generated, how="record")
    cut = platforms.cut_at_floor(recorded, "2.28")
    assert cut["platforms"][0] == "manylinux_2_28_x86_64" and cut["how"] == "record"
    assert [str(tag) for tag in platforms.expand(cut, "3.12")] == [
        str(tag) for tag in platforms.expand(recorded, "3.12") if not platforms.above_floor(tag.platform, "2.28")]
    assert platforms.cut_at_floor(cut, "2.34") == cut  # a lower recording is kept as it is
    mac = platforms.generated("macos-arm64", ["3.12"])
    assert platforms.cut_at_floor(mac, "2.17") is mac
    assert [platforms.glibc_of(tag) for tag in ("manylinux2014_x86_64", "manylinux_2_34_aarch64", "linux_x86_64",
                                                "macosx_11_0_arm64")] == [(2, 17), (2, 34), None, None]
    for bad in ("2", "2.28.1", "3.1", "two", "02.28"):
        with pytest.raises(ToolError, match="is not a glibc version"):
            platforms.glibc_floor(bad)


def test_this_repositorys_lock_states_the_default_floor_and_its_descriptors_are_what_make_platforms_writes():
    text = (REPO / "requirements.txt").read_text()
    assert lockfile.glibc_floor(text) == platforms.DEFAULT_GLIBC_FLOOR
    assert platforms.descriptor_problems(REPO, lockfile.platforms(text), platforms.DEFAULT_GLIBC_FLOOR) == []
    assert platforms.wheels_above_floor(REPO / "requirements", platforms.DEFAULT_GLIBC_FLOOR) == []
