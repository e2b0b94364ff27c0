"""Issue 17: `make freeze`, `freeze-upgrade` and `check` under faults, one scenario per numbered case.

Kills are injected at exact points of the switch through an audit hook the tests install into the checkout's ve
(tests/switch_stop_hook.py: the process stops itself with SIGSTOP before move N and says so), then the test sends
SIGKILL or SIGINT. One real
`make freeze-upgrade` (module fixture) is stopped before every move to record the tree at each point; the kill
matrix replays the switch from its journal and kills it before each move, then checks that the next command
completes it. Items 2, 12 and 13 are covered by tests/test_check.py (named below) and item 14 by a merge unit test.
"""

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import (
    REPO, TIMEOUT, assert_one_error, assert_ok, built, describe, make_argv, make_env, python_or_skip, run_make,
    sha256_file, tree_digest, unshare_or_skip, ve_state,
)
from index_helpers import build_wheel, rebuild_with_version
import switch_stop_hook
import test_freeze
from test_freeze import MANAGED, PAYLOAD_BYTES, THIS_PYTHON, Project, make_index, report_lines
from bootstrap_tools import check, lockfile, report, requirements_in, targets

slow = pytest.mark.slow
HOOK = switch_stop_hook.VARIABLE
# tests/test_freeze.py's fixtures: `base` (frozen once per module), `project` (a built copy of it per test).
base, project, payload_wheels = test_freeze.base, test_freeze.project, test_freeze.payload_wheels
JOURNAL = ".bootstrap/switch-journal.json"
DONE = ".bootstrap/switch-done.json"
LEFTOVERS = ("build", ".bootstrap", "ve", ".ve-a", ".ve-b", ".ve.lock", ".ve.tmp")


# --- the tree a switch works on, and stopping a process at an exact move ----------------------------------------


def switch_state(root):
    """{path: sha256} of every file a switch touches, its staged files and its journal (what a kill leaves)."""
    root = Path(root)
    digests = {}
    for path, digest in tree_digest(root).items():
        managed = any(path == name or path.startswith(name + os.sep) for name in MANAGED)
        if digest != "dir" and (managed or path == JOURNAL or path.endswith(".switch-new")):
            digests[path] = digest
    return digests


def save_state(root, dest):
    """Copy what switch_state covers into dest (hard links: a switch renames files, never writes into them)."""
    root, dest = Path(root), Path(dest)
    for path in switch_state(root):
        target = dest / path
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(root / path, target)
    return dest


def restore_state(saved, root):
    root = Path(root)
    for path in switch_state(root):
        (root / path).unlink()
    (root / DONE).unlink(missing_ok=True)
    for source in Path(saved).rglob("*"):
        if source.is_file():
            target = root / source.relative_to(saved)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)


def tools_env(checkout):
    """The checkout's tools' env (.bootstrap/tools), where freeze and check run; built first if absent."""
    tools = Path(checkout) / ".bootstrap" / "tools"
    if not tools.exists():
        assert_ok(run_make(checkout, "bootstrap-tools"))
    return tools


def install_stop_hook(checkout):
    """Put tests/switch_stop_hook.py into the site-packages of the slot the tools' env points at, imported by a .pth
    line (the env's no-op looks at the distributions only, so it stays a no-op)."""
    site = next(Path(os.path.realpath(tools_env(checkout))).glob("lib/python*/site-packages"))
    shutil.copyfile(Path(switch_stop_hook.__file__), site / "switch_stop_hook.py")
    (site / "switch_stop_hook.pth").write_text("import switch_stop_hook\n")


def hooked_python(directory):
    """A PYTHON for make whose bootstrap.py runs with the stop hook (bootstrap.py completes a pending switch)."""
    wrapper = Path(directory) / "python-with-stop-hook"
    wrapper.write_text(f'#!/bin/sh\nexec python3 -E -s -S -B "{switch_stop_hook.__file__}" "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def start(checkout, *args, stop_at=None, log=None):
    """Start `make ARGS`; with stop_at, the process doing the switch stops itself before that move (or "all"):
    bootstrap.py when it finds a switch pending, else the tool's own switch."""
    env = make_env()
    if stop_at is not None:
        env[HOOK] = f"{stop_at}:{log}"
        install_stop_hook(checkout)
        args = (*args, f"PYTHON={hooked_python(Path(log).parent)}")
    out = open(Path(log or checkout / ".." / "run").with_suffix(".out"), "w+")
    # Ctrl-C as at a terminal: a runner started in the background (`make test &`) passes SIGINT down ignored.
    process = subprocess.Popen(make_argv(*args), cwd=checkout, env=env, stdin=subprocess.DEVNULL, stdout=out,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    process.out = out
    return process


def wait_stopped(process, log, count):
    """Wait until the hook has stopped a process for the `count`-th time; return (pid, move number, path)."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        lines = Path(log).read_text().splitlines() if Path(log).exists() else []
        if len(lines) >= count:
            pid, number, path = lines[count - 1].split(" ", 2)
            if stopped(int(pid)):
                return int(pid), int(number), path
        if process.poll() is not None:
            raise AssertionError(f"ended before stopping:\n{output(process)}")
        time.sleep(0.05)
    raise AssertionError("the hook never stopped the process")


def stopped(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"
    except OSError:
        return False


def output(process):
    process.out.seek(0)
    return process.out.read()


def finish(process):
    process.wait(timeout=TIMEOUT)
    return process.returncode, output(process)


def interrupt(pid, how):
    """SIGKILL, or Ctrl-C: SIGINT to the process group (make and the tool), then let the stopped tool run."""
    if how == "SIGKILL":
        os.kill(pid, signal.SIGKILL)
    else:
        os.killpg(os.getpgid(pid), signal.SIGINT)
        os.kill(pid, signal.SIGCONT)


def report_body(text):
    """The report without the line saying what it compares with, and without its supply chain section: that one
    names the run's own cutoff (its clock) and what the run itself added to the provenance record."""
    body = text.partition("\nSupply chain (")[0]
    return [line for line in body.splitlines() if not line.startswith("(compared with")]


def publish_upgrades(project, tmp_path):
    """alpha 2.0 and a pip `<locked>.1` (the real pip wheel, repackaged) on the project's index."""
    project.index.add("alpha", "2.0", content="two")
    pip = project.pins()["pip"]
    wheel = project.path / "requirements" / f"pip-{pip.version}-py3-none-any.whl"
    project.index.add_file(rebuild_with_version(wheel, tmp_path / "made", pip.version + ".1"))
    return pip.version, pip.version + ".1"


# --- one real freeze-upgrade, stopped before every move ---------------------------------------------------------


@pytest.fixture(scope="module")
def upgrade(base, tmp_path_factory, payload_wheels):
    """A copy of `base` whose `make freeze-upgrade` was stopped before each move of its switch (the tree saved at
    each stop), then let finish: {"project", "before", "states": [saved trees], "moves", "after", "report"}."""
    root = tmp_path_factory.mktemp("upgrade")
    project = built_copy(base, root, payload_wheels)
    path = project.path
    old_pip, new_pip = publish_upgrades(project, root)
    before = save_state(path, root / "before")
    log = root / "stops"
    process = start(path, "freeze-upgrade", f"INDEX_URL={project.index.url}", f"TARGET_PYTHONS={THIS_PYTHON}",
                    PAYLOAD_BYTES, stop_at="all", log=log)
    states, moves = [], []
    while True:
        try:
            pid, number, moved = wait_stopped(process, log, len(moves) + 1)
        except AssertionError:
            break
        assert number == len(moves)
        states.append(save_state(path, root / f"state-{number}"))
        moves.append(moved)
        os.kill(pid, signal.SIGCONT)
    returncode, text = finish(process)
    assert returncode == 0, text
    return {"project": project, "before": before, "states": states, "moves": moves, "old_pip": old_pip,
            "new_pip": new_pip, "after": switch_state(path), "report": project.report_file()}


@slow
def test_the_switch_moves_every_file_after_its_journal(upgrade):
    moves, old, new = upgrade["moves"], upgrade["old_pip"], upgrade["new_pip"]
    # Every file the switch moves has a stop before it: new artifacts, seed, SHA256SUMS, virtualenv.txt,
    # virtualenv.py, the runtime lock and its pins, the dev lock (which pins pip), then the deletions.
    expected = {"requirements/alpha-2.0-py3-none-any.whl", f"requirements/pip-{new}-py3-none-any.whl",
                f"virtualenv_support/pip-{new}-py3-none-any.whl", "virtualenv_support/SHA256SUMS",
                "bootstrap_tools/virtualenv.txt", "virtualenv.py", "requirements.txt", "requirements.pins",
                "requirements-dev.txt", f"virtualenv_support/pip-{old}-py3-none-any.whl",
                "requirements/alpha-1.0-py3-none-any.whl", f"requirements/pip-{old}-py3-none-any.whl"}
    assert set(moves) == expected and len(moves) == MOVES, moves
    for lock in ("requirements.txt", "requirements-dev.txt"):
        assert moves.index(lock) > moves.index("virtualenv_support/SHA256SUMS")
    for deleted in ("requirements/alpha-1.0-py3-none-any.whl", f"requirements/pip-{old}-py3-none-any.whl"):
        assert moves.index(deleted) > max(moves.index("requirements.pins"), moves.index("requirements-dev.txt"))
    # Before the first move: the journal and every staged file exist, and no managed file has changed.
    first = set(upgrade["states"][0].rglob("*"))
    assert upgrade["states"][0] / JOURNAL in first
    assert len([path for path in first if path.name.endswith(".switch-new")]) == 9


# The moves of that switch (see the test above).
MOVES = 12


def kill_cases():
    # Each move killed with SIGKILL and with Ctrl-C.
    return [(number, how) for number in range(MOVES) for how in ("SIGKILL", "SIGINT")]


@slow
@pytest.mark.parametrize("number,how", kill_cases())
def test_a_switch_killed_before_any_move_is_completed_by_the_next_command(upgrade, number, how, tmp_path):
    project = upgrade["project"]
    path = project.path
    restore_state(upgrade["states"][0], path)
    log = tmp_path / "stops"
    # The switch resumed by `make check` is the same code, moving the same files, as freeze-upgrade's own.
    process = start(path, "check", stop_at=number, log=log)
    pid, stopped_at, moved = wait_stopped(process, log, 1)
    assert (stopped_at, moved) == (number, upgrade["moves"][number])
    interrupt(pid, how)
    returncode, text = finish(process)
    assert returncode != 0, text
    assert "Traceback" not in text, text
    if how == "SIGINT":
        assert len([line for line in text.splitlines() if line.startswith("ERROR:")]) == 1, text
    # What the kill left is exactly what the real freeze-upgrade had done before that move.
    assert switch_state(path) == switch_state(upgrade["states"][number])

    result = assert_ok(project.make("check"))
    assert "completed the switch of an interrupted `make freeze`" in result.stdout, describe(result)
    assert switch_state(path) == upgrade["after"]
    assert not (path / JOURNAL).exists() and (path / DONE).exists()


@slow
def test_item1_freeze_upgrade_killed_between_seed_and_lock_then_check_and_freeze_tell_the_truth(upgrade, tmp_path):
    project = upgrade["project"]
    path = project.path
    restore_state(upgrade["before"], path)
    assert_ok(project.make("ve"))
    log = tmp_path / "stops"
    process = start(path, "freeze-upgrade", f"INDEX_URL={project.index.url}", f"TARGET_PYTHONS={THIS_PYTHON}",
                    PAYLOAD_BYTES, stop_at=upgrade["moves"].index("requirements.txt"), log=log)
    pid, _, moved = wait_stopped(process, log, 1)
    assert moved == "requirements.txt"
    os.kill(pid, signal.SIGKILL)
    finish(process)
    # The seed is the new pip, the lock still the old one: check completes the switch, then finds all agree.
    assert (path / "virtualenv_support" / f"pip-{upgrade['new_pip']}-py3-none-any.whl").exists()
    assert f"pip=={upgrade['old_pip']}\n" in project.read("requirements.pins")
    result = assert_ok(project.make("check"))
    assert "completed the switch" in result.stdout, describe(result)
    assert f"pip=={upgrade['new_pip']}\n" in project.read("requirements.pins")
    assert switch_state(path) == upgrade["after"]
    # The next freeze reports what the interrupted one changed, against the tree before it: the same report.
    result = assert_ok(project.freeze())
    text = project.report_file()
    assert text.startswith("(compared with the tree before the interrupted freeze of "), text
    assert report_body(text) == report_body(upgrade["report"]), describe(result)
    assert f"  upgraded:  pip {upgrade['old_pip']} -> {upgrade['new_pip']}" in text
    assert not (path / DONE).exists()
    # And the one after that compares with its own start again.
    assert_ok(project.freeze())
    assert report_body(project.report_file())[:2] == ["Pins (requirements.txt):", "  no change"]


# --- item 6: Ctrl-C in a plain freeze's switch; the rerun's report is true -------------------------------------------


@slow
def test_item6_ctrl_c_during_the_switch_then_the_rerun_reports_what_was_added(project, tmp_path):
    project.requirements_in(add=["beta"])
    log = tmp_path / "stops"
    process = start(project.path, "freeze", f"INDEX_URL={project.index.url}", f"TARGET_PYTHONS={THIS_PYTHON}",
                    stop_at=3, log=log)  # beta, gamma, requirements.txt moved; requirements.pins not yet
    pid, _, moved = wait_stopped(process, log, 1)
    assert moved == "requirements.pins"
    interrupt(pid, "SIGINT")
    returncode, text = finish(process)
    assert returncode != 0 and "Traceback" not in text, text
    errors = [line for line in text.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and "interrupted during its switch" in errors[0] and "make check" in errors[0], text

    result = assert_ok(project.freeze())
    assert "completed the switch of an interrupted `make freeze`" in result.stdout, describe(result)
    lines = report_lines(result, project)
    assert "  added:     beta 1.1" in lines and "  added:     gamma 1.0" in lines, lines
    assert any(line.startswith("  + requirements/beta-1.1-py3-none-any.whl") for line in lines), lines
    assert not list(project.path.rglob("*.switch-new")) and not list(project.path.rglob(".*.part"))
    assert_ok(project.make("check"))


# --- item 3: one freeze at a time, and make ve waits for a switch -----------------------------------------------


@slow
def test_item3_two_freezes_and_a_make_ve_at_once_take_turns(project, tmp_path):
    project.requirements_in(add=["beta"])
    args = ("freeze", f"INDEX_URL={project.index.url}", f"TARGET_PYTHONS={THIS_PYTHON}")
    log = tmp_path / "stops"
    first = start(project.path, *args, stop_at=1, log=log)
    wait_stopped(first, log, 1)  # mid-switch: one file moved, holding the freeze lock and the switch lock
    second = start(project.path, *args, log=tmp_path / "second")
    tools_python = str(tools_env(project.path) / "bin" / "python")
    direct = subprocess.Popen([tools_python, "-E", "-s", "-m", "bootstrap_tools.freeze",
                               "--targets", THIS_PYTHON, "--index-url", project.index.url], cwd=project.path,
                              env=make_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while "waiting" not in output(second) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "waiting for .bootstrap/switch.lock" in output(second)  # make ve never reads a half-switched lock
    time.sleep(1)
    assert second.poll() is None and direct.poll() is None
    os.kill(int(log.read_text().split()[0]), signal.SIGCONT)
    for process in (first, second):
        returncode, text = finish(process)
        assert returncode == 0 and "Traceback" not in text and "ERROR" not in text, text
    text = direct.communicate(timeout=TIMEOUT)[0]
    assert direct.returncode == 0 and "Traceback" not in text, text
    assert "==> waiting: `make freeze` (pid" in text and "holds this checkout's freeze lock" in text, text
    assert project.pins()["beta"].version == "1.1"
    assert_ok(project.make("check"))


@pytest.fixture(scope="module")
def shared(base, tmp_path_factory, payload_wheels):
    """One built copy of `base` for the scenarios that must change nothing (each restores what it edits)."""
    return built_copy(base, tmp_path_factory.mktemp("shared"), payload_wheels)


def built_copy(base, root, payload_wheels):
    """test_freeze's frozen tree copied to root/checkout, with its own index and a ve built there."""
    source = base[1]  # the snapshot; its ve is valid only where it was built, so this copy builds its own
    path = root / "checkout"
    shutil.copytree(source, path, symlinks=True, ignore=lambda d, names: LEFTOVERS if d == str(source) else [])
    project = Project(path, make_index(root / "index", payload_wheels))
    built(project.make("ve"))
    return project


@pytest.fixture
def requirements_in_restored(shared):
    saved = (shared.path / "requirements.in").read_bytes()
    yield shared
    (shared.path / "requirements.in").write_bytes(saved)


# --- items 4, 5: what would stop the switch half-way is found before it starts -------------------------------------


@slow
def test_item4_a_directory_in_requirements_is_reported_by_check_and_refused_by_freeze(requirements_in_restored):
    project = requirements_in_restored
    stray = project.path / "requirements" / "unpacked"
    stray.mkdir()
    try:
        (stray / "file.txt").write_text("x")
        result = project.make("check")
        assert_one_error(result, "1 problem(s)")
        assert "requirements/unpacked is a directory" in result.stdout, describe(result)
        project.requirements_in(remove=["alpha"])
        before = switch_state(project.path)
        assert_one_error(project.freeze(), "requirements/unpacked is a directory", "move it out",
                         "Nothing was changed")
        assert switch_state(project.path) == before
    finally:
        shutil.rmtree(stray)


def in_mount_namespace(project, setup, *args):
    """Run `make ARGS` in a private mount namespace after the shell commands `setup` ($1 is the checkout); the
    listing of requirements/ as that namespace sees it is printed after `==> listing`."""
    unshare_or_skip("-m")
    script = (f"cd \"$1\" && {{ {setup} ; }} || exit 97; "
              f"{shlex.join(make_argv(*args))}; status=$?; "
              "echo '==> listing'; ls -a requirements; exit $status")
    return subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", str(project.path)], env=make_env(),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TIMEOUT)


@slow
@pytest.mark.parametrize("fault", ["read-only", "full"])
def test_item5_a_read_only_or_full_requirements_dir_fails_before_the_switch(requirements_in_restored, tmp_path,
                                                                            fault):
    project = requirements_in_restored
    big = build_wheel(tmp_path / "big", "bigpkg", "1.0", content=os.urandom(300_000).hex())
    project.index.add_file(big)
    project.requirements_in(add=["bigpkg"])
    before = switch_state(project.path)
    names = sorted(os.listdir(project.path / "requirements"))
    if fault == "read-only":
        setup = "mount --bind requirements requirements && mount -o remount,bind,ro requirements requirements"
        needle = "Read-only file system"
    else:
        used = sum(-(-os.path.getsize(path) // 4096) * 4096 for path in (project.path / "requirements").iterdir())
        setup = (f"cp -a requirements {tmp_path}/saved && mount -t tmpfs -o size={used + 65536} tmpfs requirements"
                 f" && cp -a {tmp_path}/saved/. requirements/")
        needle = "No space left on device"
    result = in_mount_namespace(project, setup, "freeze", f"INDEX_URL={project.index.url}",
                                f"TARGET_PYTHONS={THIS_PYTHON}")
    if result.returncode == 97:
        pytest.skip(f"cannot set up the mount: {result.stderr.strip()}")
    assert_one_error(result, needle, "Nothing was changed")
    listing = result.stdout.split("==> listing\n", 1)[1].split()
    assert sorted(set(listing) - {".", ".."}) == names, listing  # no staged or partial file left
    assert switch_state(project.path) == before
    assert not (project.path / JOURNAL).exists()


# --- items 7-11: refused with one line, naming the real cause ----------------------------------------------------


@slow
def test_item7_targets_without_the_ves_python_lock_then_make_ve_gives_advice_that_works(project):
    # The tools run in their own env, so a freeze may lock for Pythons the ve does not run; the ve then says what
    # to do, and the freeze it advises works.
    other = "3.12" if THIS_PYTHON != "3.12" else "3.11"
    other_python = python_or_skip(other)
    assert_ok(project.make("freeze", f"INDEX_URL={project.index.url}", f"TARGET_PYTHONS={other}"))
    assert lockfile.targets(project.read("requirements.txt")) == [other]
    before = ve_state(project.path)
    error = assert_one_error(project.make("ve"), f"Python {THIS_PYTHON}", "is not a target of requirements.txt",
                             f"{other} ({other_python})", "make ve PYTHON=<one of those paths>")
    assert ve_state(project.path) == before
    advised = re.search(r"`make (freeze TARGET_PYTHONS=\"([\d. ]+)\")`", error)
    assert advised and advised.group(2).split() == sorted([THIS_PYTHON, other]), error
    assert_ok(project.make("freeze", f"INDEX_URL={project.index.url}", f"TARGET_PYTHONS={advised.group(2)}"))
    built(project.make("ve"))


def test_item7_make_ve_on_a_lock_without_its_python_advises_a_freeze_that_can_run(checkout):
    lock = checkout / "requirements.txt"
    other = "3.12" if THIS_PYTHON != "3.12" else "3.11"
    lock.write_text(re.sub(r"^# targets: .*$", f"# targets: {other}", lock.read_text(), flags=re.MULTILINE))
    result = subprocess.run([sys.executable, "-I", "-S", "bootstrap.py"], cwd=checkout, env=make_env(),
                            capture_output=True, text=True)
    targets_value = " ".join(sorted([THIS_PYTHON, other]))
    assert_one_error(result, f'make freeze TARGET_PYTHONS="{targets_value}"')


def test_item7_the_report_never_names_a_dropped_target_as_upgraded():
    def lock(targets_line, *pins):
        return f"# targets: {targets_line}\n" + "".join(
            f"{pin} \\\n    --hash=sha256:{'0' * 64}\n" for pin in pins)

    before = lock("3.10 3.11", "alpha==1.0", 'tomli==2.0 ; python_version < "3.11"')
    after = lock("3.11", "alpha==2.0")
    changes = report.pin_changes(before, after)
    assert changes == [("targets", "3.10 3.11 -> 3.11"), ("upgraded", "alpha 1.0 -> 2.0"),
                       ("removed", "tomli 2.0 (Python 3.10, a dropped target)")], changes


UNSUPPORTED = {
    "--index-url https://user:secret@127.0.0.1:9/simple/": "INDEX_URL",
    "-e ./localpkg": "editable",
    "alpha @ https://127.0.0.1:9/alpha-1.0-py3-none-any.whl": "direct URL",
    "./localpkg": "is a path",
    "-r other.in": "copy its requirements here",
}


@slow
@pytest.mark.parametrize("line", sorted(UNSUPPORTED))
def test_items8_9_unsupported_requirements_in_lines_are_refused_by_freeze_and_check(requirements_in_restored, line):
    project = requirements_in_restored
    project.requirements_in(add=[line])
    before = switch_state(project.path)
    result = project.freeze()
    assert_one_error(result, "requirements.in line", UNSUPPORTED[line], "Nothing was changed")
    assert "secret" not in result.stdout + result.stderr, describe(result)  # a credential is never echoed
    assert switch_state(project.path) == before
    result = project.make("check")
    assert_one_error(result, "1 problem(s)")
    assert "requirements.in line" in result.stdout and UNSUPPORTED[line] in result.stdout, describe(result)


@slow
def test_item9_several_unsupported_lines_are_each_listed_once(requirements_in_restored):
    project = requirements_in_restored
    project.requirements_in(add=["-e ./localpkg", "alpha @ https://127.0.0.1:9/alpha.whl"])
    result = project.freeze()
    assert_one_error(result, "editable", "(1 more, listed above.)")
    assert "direct URL" in result.stderr and "^" not in result.stderr, describe(result)


@slow
def test_item10_an_index_serving_other_bytes_than_it_advertises_is_blamed_not_requirements_in(
        requirements_in_restored, tmp_path):
    project = requirements_in_restored
    project.index.add("delta", "1.0")
    delta = project.index.wheel("delta", "1.0")
    advertised = sha256_file(delta)
    shutil.copyfile(build_wheel(tmp_path / "other", "delta", "1.0", content="swapped on the index"), delta)
    project.requirements_in(add=["delta"])
    before = switch_state(project.path)
    error = assert_one_error(project.freeze(), f"the index {project.index.url}", "delta-1.0-py3-none-any.whl",
                             advertised, sha256_file(delta), "not a problem of requirements.in", "Nothing was changed")
    assert "fix requirements.in" not in error
    assert switch_state(project.path) == before


@slow
def test_item11_a_non_utf8_requirements_in_is_one_error_for_freeze(requirements_in_restored):
    project = requirements_in_restored
    (project.path / "requirements.in").write_bytes(b"alpha\nb\xe9ta\n")
    assert_one_error(project.freeze(), "requirements.in is not UTF-8", "byte 7", "Nothing was changed")


@pytest.mark.parametrize("name", ["requirements.in", "virtualenv.py", "requirements.txt", "requirements.pins"])
def test_item11_check_reads_non_utf8_files_without_crashing(checkout, name):
    path = checkout / name
    path.write_bytes(path.read_bytes() + b"\n# caf\xe9\n")
    problems = check.find_problems(checkout)
    assert any(name in problem for problem in problems), problems
    result = subprocess.run([sys.executable, "-E", "-s", "-m", "bootstrap_tools.check", str(checkout)], cwd=REPO,
                            capture_output=True, text=True, env=make_env())
    assert_one_error(result, "problem(s)")


# Items 2, 12, 13 (make check): tests/test_check.py::test_a_backup_copy_is_the_stray_and_the_real_wheel_is_never_to_be
# _deleted, ::test_an_edited_launcher_is_reported, ::test_a_header_that_disagrees_with_tools_virtualenv_txt_is_reported,
# ::test_stray_advice_is_rm_quoted_when_untracked_and_git_rm_only_when_tracked.


def test_check_covers_every_requirements_in_line(tmp_path):
    path = tmp_path / "requirements.in"
    path.write_text("alpha\n# a comment\n-e .\n--extra-index-url https://127.0.0.1:9/simple/\nbeta>=1 ; "
                    "python_version < '3.12'  # why\n")
    requirements, problems = requirements_in.read(path)
    assert [line for _, line, _ in requirements] == ["alpha", "beta>=1 ; python_version < '3.12'"]
    assert [problem.split("`")[0] for problem in problems] == ["requirements.in line 3 ", "requirements.in line 4 "]


# --- item 14: a marker from requirements.in is not repeated --------------------------------------------------------


def test_item14_a_requirements_in_marker_is_not_repeated_by_the_merge():
    hashed = f" \\\n    --hash=sha256:{'a' * 64}\n    # via -r requirements.in\n"
    results = {"3.11": 'alpha==1.0 ; python_version < "3.12"' + hashed, "3.12": "", "3.13": ""}
    merged = targets.merge(results, ["3.11", "3.12", "3.13"])
    assert 'alpha==1.0 ; python_version < "3.12" \\\n' in merged, merged
    assert merged.count("python_version <") == 1, merged
    # A marker that says less than the targets do still gets the python_version one.
    results = {"3.11": 'alpha==1.0 ; sys_platform != "win32"' + hashed, "3.12": "", "3.13": ""}
    assert 'sys_platform != "win32" and python_version < "3.12"' in targets.merge(results, ["3.11", "3.12", "3.13"])


# --- issue 26, items 8-11: what an interrupted or mistyped freeze says and leaves ----------------------------------


@slow
def test_issue26_item8_an_interrupt_after_the_switch_says_the_switch_was_done(project):
    project.index.add("alpha", "2.0", content="two")
    install_stop_hook(project.path)
    result = project.freeze_upgrade("PACKAGES=alpha", env=make_env(**{switch_stop_hook.INTERRUPT_AT:
                                                                      "freeze-report.txt"}))
    assert_one_error(result, "interrupted after its switch", "The switch was done", "make check")
    assert "Nothing was changed" not in result.stderr, describe(result)
    assert project.pins()["alpha"].version == "2.0", "the switch this message describes did happen"
    assert not (project.path / JOURNAL).exists()


@slow
def test_issue26_item9_what_a_freeze_killed_while_staging_left_is_removed_by_freeze_and_clean(project):
    staged = [project.path / "requirements" / ".alpha-9.0-py3-none-any.whl.switch-new",
              project.path / ".requirements.txt.switch-new",
              project.path / "bootstrap_tools" / ".virtualenv.txt.switch-new"]
    mine = project.path / "requirements" / ".my-notes.txt"  # hidden, but not a name a freeze gives: the user's
    for path in staged + [mine]:
        path.write_text("staged by a freeze killed before its journal\n")
    checked = project.make("check")
    assert "was staged by a `make freeze` interrupted before its switch" in checked.stdout, describe(checked)
    assert "`make clean` or the next `make freeze` removes it" in checked.stdout, describe(checked)
    frozen = assert_ok(project.freeze())
    assert "removed 3 file(s) an interrupted `make freeze` staged" in frozen.stdout, describe(frozen)
    assert not any(path.exists() for path in staged) and mine.exists()
    assert ".switch-new" not in project.report_file()
    for path in staged:
        path.write_text("staged again\n")
    cleaned = assert_ok(project.make("clean"))
    assert not any(path.exists() for path in staged) and mine.exists(), describe(cleaned)


@slow
@pytest.mark.parametrize("packages,needles", [
    ("alpah", ["`alpah`", "does not pin", "Did you mean alpha?"]),
    ("nosuchthing", ["`nosuchthing`", "does not pin", "requirements.in"]),
    ("alpha==2.0", ["takes package names, not requirements", "PACKAGES=alpha"]),
    ("-e", ["`-e`", "not a package name"]),
])
def test_issue26_item10_packages_names_are_checked_against_the_lock_before_any_resolution(shared, packages, needles):
    before = switch_state(shared.path)
    result = shared.freeze_upgrade(f"PACKAGES={packages}")
    assert_one_error(result, *needles, "Nothing was changed")
    assert "pip-compile" not in result.stdout, describe(result)
    assert switch_state(shared.path) == before
