"""Issue 27: a deploy ve with only what the application runs, and the convention's tools apart.

- This repository runs on the standard library: its runtime set (requirements.in) is empty, its dev set
  (requirements-dev.in: pytest, flake8...) is locked apart. `make ve GROUPS=runtime` builds a ve holding no
  distribution at all (not even pip), `make ve` the dev set too, both offline; switching back and forth is a slot
  switch, and the no-op stays a no-op.
- A project's dev set is locked with the runtime pins held: a dev requirement that would move a runtime pin stops the
  freeze with one ERROR naming requirements-dev.in, and changes nothing; a runtime pin it never reaches moving
  leaves its lock as it is, without resolving it again (issue 29).
- The maintainer tools run from their own env (.bootstrap/tools), built offline from bootstrap_tools/wheels/.
"""

import subprocess

import pytest

from conftest import (
    TIMEOUT, assert_ok, assert_one_error, built, copy_checkout, describe, make_env, run_make, unshare_or_skip,
    up_to_date,
)
from test_freeze import THIS_PYTHON, managed_digest, make_index
from bootstrap_tools import lockfile

slow = pytest.mark.slow


def distributions(checkout):
    result = subprocess.run([str(checkout / "ve" / "bin" / "python"), "-I", "-c", "import importlib.metadata as m; "
                             "print(' '.join(sorted(d.metadata['Name'].lower() for d in m.distributions())))"],
                            env=make_env(), capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, describe(result)
    return set(result.stdout.split())


@slow
def test_groups_runtime_builds_only_the_runtime_set_and_switching_back_is_a_slot_switch(tmp_path):
    unshare_or_skip("-n")
    checkout = copy_checkout(tmp_path / "checkout")
    offline = ["unshare", "-n"]
    built(run_make(checkout, "ve", "GROUPS=runtime", prefix=offline))
    assert distributions(checkout) == set(), "this repository's runtime set is empty: nothing installed, pip neither"
    assert not list((checkout / "ve" / "bin").glob("pip*"))
    built(run_make(checkout, "ve", prefix=offline))
    dev = {pin.name for pin in lockfile.parse((checkout / "requirements-dev.txt").read_text())[0]
           if pin.applies_to(THIS_PYTHON)}
    assert distributions(checkout) == dev and {"pytest", "flake8", "pip"} <= dev
    up_to_date(run_make(checkout, "ve"))
    switched = assert_ok(run_make(checkout, "ve", "GROUPS=runtime", prefix=offline))
    assert "which already holds the build for these inputs (groups changed" in switched.stdout, describe(switched)
    assert distributions(checkout) == set()
    assert_one_error(run_make(checkout, "ve", "GROUPS=dev"), "GROUPS=dev", "GROUPS=runtime")
    # The maintainer tools never enter the ve: `make check` builds their own env, offline, from bootstrap_tools/.
    assert_ok(run_make(checkout, "check", prefix=offline))
    tools = subprocess.run([str(checkout / ".bootstrap" / "tools" / "bin" / "python"), "-I", "-c",
                            "import piptools, cyclonedx, packaging"], capture_output=True, text=True, timeout=TIMEOUT)
    assert tools.returncode == 0, describe(tools)
    assert distributions(checkout) == set()


@slow
def test_the_dev_set_is_locked_with_the_runtime_pins_held(tmp_path):
    index = make_index(tmp_path / "index")
    index.add("delta", "1.0", requires=["alpha"])
    project = copy_checkout(tmp_path / "checkout")
    (project / "requirements.in").write_text("alpha\n")
    (project / "requirements-dev.in").write_text("delta\n")
    freeze = ("freeze", f"INDEX_URL={index.url}", f"TARGET_PYTHONS={THIS_PYTHON}", "TARGET_PLATFORMS=",
              "COOLDOWN_DAYS=0")
    result = assert_ok(run_make(project, *freeze))
    assert "Pins (requirements-dev.txt, the dev set" in result.stdout, describe(result)
    runtime = {pin.name: pin.version for pin in lockfile.parse((project / "requirements.txt").read_text())[0]}
    dev = {pin.name: pin.version for pin in lockfile.parse((project / "requirements-dev.txt").read_text())[0]}
    assert runtime == {"alpha": "1.0"} and dev == {"alpha": "1.0", "delta": "1.0"}, (runtime, dev)
    assert "constrained by requirements.txt" in (project / "requirements-dev.txt").read_text().splitlines()[0]
    built(run_make(project, "ve", "GROUPS=runtime"))
    assert distributions(project) == {"alpha"}
    assert_ok(run_make(project, "check"))

    # Issue 29: a runtime pin the dev set never reaches is added; the dev lock is kept, not resolved again.
    index.add("zeta", "1.0")
    (project / "requirements.in").write_text("alpha\nzeta\n")
    dev_before = (project / "requirements-dev.txt").read_text()
    kept = assert_ok(run_make(project, *freeze))
    assert "requirements-dev.txt kept" in kept.stdout and "(requirements-dev.in)" not in kept.stdout, describe(kept)
    assert (project / "requirements-dev.txt").read_text() == dev_before
    assert {pin.name for pin in lockfile.parse((project / "requirements.txt").read_text())[0]} == {"alpha", "zeta"}
    assert_ok(run_make(project, "check"))

    # A newer alpha, and a dev tool that needs it: locking them together would move the runtime pin.
    index.add("alpha", "2.0")
    index.add("epsilon", "1.0", requires=["alpha>=2"])
    (project / "requirements-dev.in").write_text("delta\nepsilon\n")
    before = managed_digest(project) | {"dev": (project / "requirements-dev.txt").read_text()}
    failed = run_make(project, *freeze)
    assert_one_error(failed, "requirements-dev.in", "runtime lock's pins held fixed")
    assert managed_digest(project) | {"dev": (project / "requirements-dev.txt").read_text()} == before


def test_a_tampered_tools_wheel_stops_the_tools_env_with_one_error(tmp_path):
    """The tools' wheels come from the checkout, each checked against bootstrap_tools/tools.txt before use."""
    checkout = copy_checkout(tmp_path / "checkout")
    wheel = next((checkout / "bootstrap_tools" / "wheels").glob("click-*.whl"))
    wheel.write_bytes(wheel.read_bytes() + b"\0")
    assert_one_error(run_make(checkout, "check"), f"bootstrap_tools/wheels/{wheel.name} does not match",
                     "bootstrap_tools/tools.txt", "git checkout --")
    assert not (checkout / ".bootstrap" / "tools").exists()
