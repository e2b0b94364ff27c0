"""Issue 26, items 4-6: sdists at freeze time under attack, and the build lock inside the journaled switch.

A local index serves this project's wheels, the tools' setuptools and small sdists made here
(tests/sdist_helpers.py). `frozen` is a checkout frozen once per module with `netpkg`, an sdist-only pin, for this
Python alone; each scenario works on a copy of it (or of the checkout before that freeze) with an index of its own.
Nothing here needs the network: the "network" a hostile setup.py reaches is an HTTP server on 127.0.0.1.
"""

import http.server
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import (
    REPO, assert_one_error, assert_ok, built, copy_checkout, describe, diff_digests, run_make, tree_digest,
    unshare_or_skip,
)
from index_helpers import Index
from sdist_helpers import SETUPTOOLS_PYPROJECT, drop_dev_set, make_sdist, setup_py, setuptools_wheels
from test_freeze_faults import finish, interrupt, start, wait_stopped
from bootstrap_tools import check, sandbox, sdists

slow = pytest.mark.slow
THIS = "%d.%d" % sys.version_info[:2]
NOT_SOURCE = ("ve", ".ve-a", ".ve-b", ".ve.lock", ".ve.tmp", "build", ".bootstrap", "__pycache__")


def netpkg(directory, before_setup=""):
    """netpkg 1.0, an sdist built with setuptools; `before_setup` is code its setup.py runs first."""
    return make_sdist(directory, "netpkg", "1.0", {
        "pyproject.toml": SETUPTOOLS_PYPROJECT, "setup.py": before_setup + setup_py("netpkg", "1.0"),
        "netpkg.py": "KIND = 'netpkg'\n"})


def make_index(directory, *sdist_files):
    index = Index(directory)
    for wheel in sorted((REPO / "requirements").glob("*.whl")) + setuptools_wheels():
        index.add_file(wheel)
    for path in sdist_files:
        index.add_file(path)
    return index


def copy_tree(source, dest):
    """`source` without its ve and build area (what a fresh clone holds)."""
    def ignore(directory, names):
        return [name for name in names if name in NOT_SOURCE] if directory == str(source) else []
    shutil.copytree(source, dest, symlinks=True, ignore=ignore)
    return Path(dest)


def source_digest(path):
    """What a commit could take: not the ve, the build area or any Python's bytecode cache."""
    return {name: digest for name, digest in tree_digest(path).items()
            if name.split("/", 1)[0] not in NOT_SOURCE and "__pycache__" not in name.split("/")}


def freeze(checkout, index, *args):
    return run_make(checkout, "freeze", f"INDEX_URL={index.url}", f"TARGET_PYTHONS={THIS}", *args)


def add_requirement(checkout, name):
    path = checkout / "requirements.in"
    path.write_text(path.read_text() + f"{name}\n")


@pytest.fixture(scope="module")
def unfrozen(tmp_path_factory):
    """A checkout with a built ve, before any sdist-only pin."""
    path = drop_dev_set(copy_checkout(tmp_path_factory.mktemp("sandbox") / "checkout"))
    built(run_make(path, "ve"))
    return path


@pytest.fixture(scope="module")
def frozen(unfrozen, tmp_path_factory):
    root = tmp_path_factory.mktemp("sandbox-frozen")
    index = make_index(root / "index", netpkg(root / "made"))
    path = copy_tree(unfrozen, root / "checkout")
    built(run_make(path, "ve"))
    add_requirement(path, "netpkg")
    assert_ok(freeze(path, index))
    assert (path / sdists.BUILD_LOCK).exists() and (path / sdists.MANIFEST).exists()
    return path


@pytest.fixture
def clone(unfrozen, tmp_path):
    path = copy_tree(unfrozen, tmp_path / "clone")
    built(run_make(path, "ve"))
    return path


class Server:
    """An HTTP server on 127.0.0.1 that counts the requests a setup.py makes to it."""

    def __init__(self):
        hits = self.hits = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                hits.append(self.path)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"reached\n")

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/setup-py"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server():
    served = Server()
    yield served
    served.httpd.shutdown()


# --- item 4: a re-uploaded sdist is never run ----------------------------------------------------------------


@slow
def test_a_re_uploaded_sdist_of_a_locked_version_never_runs(frozen, tmp_path):
    # The index now serves other bytes for netpkg 1.0, whose setup.py leaves a mark wherever it runs.
    mark = tmp_path / "setup-py-ran"
    hostile = netpkg(tmp_path / "hostile", f"open({str(mark)!r}, 'a').write('ran\\n')\n")
    index = make_index(tmp_path / "index", hostile)
    checkout = copy_tree(frozen, tmp_path / "checkout")
    built(run_make(checkout, "ve"))
    before = source_digest(checkout)
    # Another inputs digest, so that the freeze resolves in full (it writes the lock back as it was).
    lock = checkout / "requirements.txt"
    lock.write_text(re.sub(r"(?m)^# inputs sha256: .*$", "# inputs sha256: " + "0" * 64, lock.read_text()))
    result = freeze(checkout, index)
    assert "resolving every target" in result.stdout, describe(result)
    assert not mark.exists(), "the index's re-uploaded setup.py ran:\n" + describe(result)
    # Its metadata came from requirements/: the lock keeps the locked sdist, nothing was rebuilt.
    assert_ok(result)
    assert diff_digests(before, source_digest(checkout)) == []
    assert "building a wheel" not in result.stdout, describe(result)
    assert check.find_problems(checkout) == []


# --- item 5: the build has no network and cannot write into the checkout -------------------------------------


@slow
def test_a_build_that_reaches_the_network_stops_the_freeze_naming_the_package(clone, server, tmp_path):
    unshare_or_skip("-n")
    unshare_or_skip("-m")
    # Its setup.py fails unless it reaches the server. pip-compile's first read of its metadata (documented:
    # first use, not sandboxed) reaches it; the build must not.
    calls = f"import urllib.request\nurllib.request.urlopen({server.url!r}, timeout=20).read()\n"
    index = make_index(tmp_path / "index", netpkg(tmp_path / "made", calls))
    add_requirement(clone, "netpkg")
    before = source_digest(clone)
    result = freeze(clone, index)
    error = assert_one_error(result, "netpkg==1.0", "netpkg-1.0.tar.gz", "no network", "Nothing was changed")
    assert "unreachable" in error or "URLError" in error or "urlopen" in error, error
    assert diff_digests(before, source_digest(clone)) == []


@slow
def test_a_build_that_writes_into_the_checkout_stops_the_freeze_naming_the_package(clone, tmp_path):
    unshare_or_skip("-n")
    unshare_or_skip("-m")
    # When it builds its wheel, its setup.py writes a file beside bootstrap.mk (the checkout's root).
    writes = ("import os, sys\n"
              "if 'bdist_wheel' in sys.argv:\n"
              "    here = os.getcwd()\n"
              "    while not os.path.exists(os.path.join(here, 'bootstrap.mk')) and here != '/':\n"
              "        here = os.path.dirname(here)\n"
              "    open(os.path.join(here, 'WRITTEN-BY-NETPKG'), 'w').write('x')\n")
    index = make_index(tmp_path / "index", netpkg(tmp_path / "made", writes))
    add_requirement(clone, "netpkg")
    before = source_digest(clone)
    result = freeze(clone, index)
    assert not (clone / "WRITTEN-BY-NETPKG").exists(), describe(result)
    error = assert_one_error(result, "building a wheel of netpkg==1.0", "netpkg-1.0.tar.gz", "Nothing was changed")
    assert "Read-only file system" in error, error
    assert diff_digests(before, source_digest(clone)) == []


# --- item 6: the build lock and manifest switch with the lock ------------------------------------------------


@slow
def test_a_kill_in_the_switch_leaves_no_lock_without_its_build_lock(clone, tmp_path):
    index = make_index(tmp_path / "index", netpkg(tmp_path / "made"))
    add_requirement(clone, "netpkg")
    log = tmp_path / "stops.log"
    process = start(clone, "freeze", f"INDEX_URL={index.url}", f"TARGET_PYTHONS={THIS}", stop_at="all", log=log)
    count = 1
    while True:  # let the switch run up to the move of requirements.txt, then kill it there
        pid, _, path = wait_stopped(process, log, count)
        if path == "requirements.txt":
            break
        os.kill(pid, signal.SIGCONT)
        count += 1
    interrupt(pid, "SIGKILL")
    code, out = finish(process)
    assert code != 0, out
    # The next command completes the switch: the lock comes with its build lock and manifest. (The provenance
    # record and pylock.toml are still written after the switch: make check names them, and they are not ours.)
    result = run_make(clone, "check")
    assert "completed the switch" in result.stdout, describe(result)
    assert (clone / sdists.BUILD_LOCK).exists() and (clone / sdists.MANIFEST).exists()
    assert [problem for problem in check.find_problems(clone)
            if sdists.BUILD_LOCK in problem or sdists.MANIFEST in problem] == [], describe(result)
    again = assert_ok(freeze(clone, index))
    assert "other bytes" not in again.stdout + again.stderr and "CHANGED" not in again.stdout, describe(again)
    assert_ok(run_make(clone, "check"))


# --- the sandbox itself (fast) -------------------------------------------------------------------------------


def test_the_sandbox_lets_a_command_write_only_in_its_area_and_reach_nothing(tmp_path, monkeypatch):
    unshare_or_skip("-n")
    unshare_or_skip("-m")
    monkeypatch.setattr(sandbox, "_chosen", {})
    root, area = tmp_path / "checkout", tmp_path / "checkout" / ".bootstrap" / "work"
    area.mkdir(parents=True)
    code = ("import pathlib, socket, sys\n"
            "pathlib.Path(sys.argv[1], 'ok').write_text('x')\n"
            "try:\n    pathlib.Path(sys.argv[2], 'escaped').write_text('x')\nexcept OSError as exc:\n"
            "    print('refused', exc.strerror)\n"
            "try:\n    socket.create_connection(('127.0.0.1', 9), timeout=5)\nexcept OSError as exc:\n"
            "    print('unreachable', exc.strerror)\n")
    result = subprocess.run([*sandbox.prefix(root, area), sys.executable, "-I", "-c", code, area, root], cwd=area,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (area / "ok").exists() and not (root / "escaped").exists()
    lines = result.stdout.splitlines()
    assert lines[0] == "refused Read-only file system" and lines[1].startswith("unreachable"), result.stdout


def test_without_unshare_the_builds_run_unsandboxed_and_freeze_says_so_once(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sandbox, "_chosen", {})
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    assert sandbox.prefix(tmp_path, tmp_path) == [] and sandbox.prefix(tmp_path, tmp_path) == []
    out = capsys.readouterr().out
    assert out.count("==> the sdist builds run without a sandbox here") == 1, out
