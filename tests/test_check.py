"""`make check` (bootstrap_tools/check.py) and wheel fitness (bootstrap_tools/wheels.py) against a copy of the
checkout broken on purpose.

Each scenario is one way the tree can lie while every file still agrees with the file next to it: a renamed or
backed-up artifact, a swapped seed wheel with a matching SHA256SUMS, an edited virtualenv.py whose header was
recomputed. None needs the network or a build; each is a fraction of a second.
"""

import base64
import hashlib
import re
import shlex
import shutil
import subprocess
import sys

import pytest

from conftest import REPO, assert_one_error, make_env, pinning_lock, python_or_skip, sha256_file
from index_helpers import build_wheel
from bootstrap_tools import check, lockfile, virtualenv_py, wheels
from bootstrap_tools.run import hermetic_env, run

THIS = "%d.%d" % sys.version_info[:2]


def problems_with(problems, *words):
    return [problem for problem in problems if all(word in problem for word in words)]


def run_check(checkout):
    return subprocess.run([sys.executable, "-E", "-s", "-m", "bootstrap_tools.check", str(checkout)], cwd=REPO,
                          capture_output=True, text=True, env=make_env())


def real_wheel(root, name):
    matches = sorted((root / "requirements").glob(f"{name}-*.whl"))
    assert len(matches) == 1, matches
    return matches[0]


# --- item 4: artifacts are matched by name, version and hash ---------------------------------------------------


def test_a_renamed_artifact_no_longer_counts_for_its_pin(checkout):
    pluggy = real_wheel(checkout, "pluggy")
    pin = str(next(pin for pin in lockfile.parse(pinning_lock(checkout, "pluggy").read_text())[0]
                   if pin.name == "pluggy"))
    renamed = pluggy.with_name("zzz-9.9-py3-none-any.whl")
    pluggy.rename(renamed)

    problems = check.find_problems(checkout)
    assert problems_with(problems, f"no artifact for {pin}", f"requirements/{renamed.name} has its bytes",
                         "make freeze"), problems
    assert problems_with(problems, f"requirements/{renamed.name} is not referenced",
                         f"`rm {shlex.quote('requirements/' + renamed.name)}`"), problems
    assert_one_error(run_check(checkout), f"{len(problems)} problem(s)")


def test_a_backup_copy_is_the_stray_and_the_real_wheel_is_never_to_be_deleted(checkout):
    pluggy = real_wheel(checkout, "pluggy")
    backup = pluggy.with_name(pluggy.name + ".orig")
    shutil.copyfile(pluggy, backup)

    problems = check.find_problems(checkout)
    assert len(problems) == 1, problems
    assert problems_with(problems, f"requirements/{backup.name} is not referenced",
                         f"a copy of requirements/{pluggy.name}", f"`rm {shlex.quote('requirements/' + backup.name)}`")
    # Nothing says the real wheel does not fit, is unreferenced, or should go.
    assert not [problem for problem in problems if f"requirements/{pluggy.name} " in problem
                or f"rm requirements/{pluggy.name}`" in problem or "fits" in problem], problems


def test_stray_advice_is_rm_quoted_when_untracked_and_git_rm_only_when_tracked(checkout):
    untracked = checkout / "requirements" / "my stray;$(id).whl"
    untracked.write_bytes(b"stray")
    tracked = checkout / "requirements" / "tracked-1.0-py3-none-any.whl"
    tracked.write_bytes(b"tracked stray")
    env = hermetic_env(checkout.parent / "git-home")
    run(["git", "init", "-q"], cwd=checkout, env=env)
    run(["git", "add", "requirements/" + tracked.name], cwd=checkout, env=env)

    problems = check.find_problems(checkout)
    assert problems_with(problems, f"`rm {shlex.quote('requirements/' + untracked.name)}`"), problems
    assert "'requirements/my stray;$(id).whl'" in shlex.quote("requirements/" + untracked.name)
    assert problems_with(problems, f"`git rm -- requirements/{tracked.name}`"), problems
    assert not problems_with(problems, "git rm", untracked.name), problems


# --- item 2 and 6: the seed pip is the lock's pip and fits every target ----------------------------------------


def swap_seed(checkout, **wheel):
    """Replace the seed wheel by a fixture `pip` wheel of the same name and rewrite SHA256SUMS to agree."""
    seeds = checkout / "virtualenv_support"
    seed = next(seeds.glob("pip-*.whl"))
    version = seed.name.split("-")[1]
    made = build_wheel(checkout.parent / "made", "pip", version, content="swapped", **wheel)
    seed.unlink()
    shutil.copyfile(made, seeds / made.name)
    (seeds / "SHA256SUMS").write_text(f"{sha256_file(seeds / made.name)}  {made.name}\n")
    return seeds / made.name


def test_a_swapped_seed_with_a_consistent_sha256sums_is_reported(checkout):
    seed = swap_seed(checkout)
    problems = check.find_problems(checkout)
    assert problems_with(problems, f"virtualenv_support/{seed.name}", "pip==", sha256_file(seed),
                         "none of the lock's hashes", "make freeze-upgrade"), problems
    assert_one_error(run_check(checkout), "problem(s)")


def test_a_seed_that_cannot_install_on_a_target_is_reported_for_each_target(checkout):
    seed = swap_seed(checkout, requires_python=">=3.99")
    problems = check.find_problems(checkout)
    for target in lockfile.targets((checkout / "requirements.txt").read_text()):
        assert problems_with(problems, f"virtualenv_support/{seed.name} cannot seed Python {target}",
                             "requires Python >=3.99"), problems


# --- item 6: wheel fitness by pip's rules ----------------------------------------------------------------------


def test_an_interpreter_tagged_pure_wheel_fits_its_own_python_only(tmp_path):
    wheel = build_wheel(tmp_path, "fastlib", "1.0", tag="cp310-none-any")
    assert wheels.unfit_reason(wheel, "3.10") is None
    assert "not supported" in wheels.unfit_reason(wheel, "3.11")
    assert wheels.unfit_reason(build_wheel(tmp_path, "pylib", "1.0", tag="py310-none-any"), "3.12") is None


def test_a_malformed_requires_python_is_ignored_as_pip_ignores_it(tmp_path):
    # pip (metadata/base.py requires_python): "Package ... has an invalid Requires-Python", then no constraint.
    wheel = build_wheel(tmp_path, "oldlib", "1.0", requires_python=">=3.5.*")
    assert wheels.unfit_reason(wheel, THIS) is None


def test_requires_python_is_tested_against_the_installing_pythons_full_version(tmp_path):
    # pip compares Requires-Python with the running X.Y.Z, not with X.Y.0.
    here = "%d.%d.%d" % sys.version_info[:3]
    wheel = build_wheel(tmp_path, "patchlib", "1.0", requires_python=f"!={here}")
    reason = wheels.unfit_reason(wheel, THIS)
    assert reason and f"!={here}" in reason and here in reason, reason
    assert wheels.unfit_reason(build_wheel(tmp_path, "anylib", "1.0", requires_python=">=3.8.1"), THIS) is None


def test_requires_python_of_another_target_uses_that_interpreters_full_version(tmp_path):
    other = "3.10" if THIS != "3.10" else "3.12"
    python = python_or_skip(other)
    full = subprocess.run([python, "-I", "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    fits = build_wheel(tmp_path / "fits", "patchlib", "1.0", requires_python=f">={full}")
    assert wheels.unfit_reason(fits, other) is None  # X.Y.0 would not
    too_new = build_wheel(tmp_path / "too-new", "patchlib", "1.0", requires_python=f">{full}")
    assert wheels.unfit_reason(too_new, other).endswith(f"(the {other} here is {full})")


# --- item 8: virtualenv.py is what the generator renders -------------------------------------------------------


def payload_of(text):
    return virtualenv_py.decoded_payload(text)[1]


def with_payload(text, payload):
    """`text` with its payload replaced by `payload` and the header's payload sha256 recomputed to match."""
    encoded = base64.encodebytes(payload).decode("ascii")
    text = re.sub(r'^PAYLOAD = b"""\n.*?"""', lambda _: f'PAYLOAD = b"""\n{encoded}"""', text,
                  flags=re.MULTILINE | re.DOTALL)
    return re.sub(r"^(# Payload: .*\n#\s+sha256:)[0-9a-f]{64}$",
                  lambda match: match.group(1) + hashlib.sha256(payload).hexdigest(), text, flags=re.MULTILINE)


def virtualenv_py_problems(checkout):
    return [problem for problem in check.find_problems(checkout) if problem.startswith("virtualenv.py")]


def test_the_real_virtualenv_py_is_authentic(checkout):
    assert virtualenv_py_problems(checkout) == []


def test_an_edited_launcher_is_reported(checkout):
    path = checkout / "virtualenv.py"
    text = path.read_text()
    assert "sys.dont_write_bytecode = True" in text
    path.write_text(text.replace("sys.dont_write_bytecode = True", "sys.dont_write_bytecode = True; import os"))
    problems = virtualenv_py_problems(checkout)
    assert problems_with(problems, "virtualenv.py", "differs from what bootstrap_tools/virtualenv_py.py renders",
                         "dont_write_bytecode", "make freeze-upgrade"), problems
    assert_one_error(run_check(checkout), "problem(s)")


def test_a_header_that_disagrees_with_tools_virtualenv_txt_is_reported(checkout):
    lock = checkout / "bootstrap_tools" / "virtualenv.txt"
    pin = next(line for line in lock.read_text().splitlines() if line.startswith("distlib=="))
    old = pin.rpartition(":")[2]
    lock.write_text(lock.read_text().replace(old, "0" * 64))
    problems = virtualenv_py_problems(checkout)
    assert problems_with(problems, "header lists distlib", old, "does not pin"), problems
    assert problems_with(problems, "header does not list distlib", "0" * 64), problems


def test_a_payload_edited_with_a_recomputed_header_is_reported(checkout):
    path = checkout / "virtualenv.py"
    text = path.read_text()
    entries = virtualenv_py.payload_entries(payload_of(text))
    member = next(name for name in sorted(entries) if name.endswith("virtualenv/__init__.py"))
    entries[member] += b"\nimport os  # planted\n"
    path.write_text(with_payload(text, virtualenv_py.zip_payload(entries)))
    assert virtualenv_py.payload_mismatch(path.read_text()) is None  # the old check saw nothing wrong
    problems = virtualenv_py_problems(checkout)
    assert problems_with(problems, member, "RECORD", "make freeze-upgrade"), problems


def test_payload_entries_round_trip_to_the_same_payload():
    payload = payload_of((REPO / "virtualenv.py").read_text())
    assert virtualenv_py.zip_payload(virtualenv_py.payload_entries(payload)) == payload


@pytest.mark.parametrize("edit", ["stripped", "python"])
def test_other_header_edits_are_reported(checkout, edit):
    path = checkout / "virtualenv.py"
    text = path.read_text()
    if edit == "stripped":
        text = re.sub(r"^# Stripped (\d+) bytes", lambda m: f"# Stripped {int(m.group(1)) + 1} bytes", text,
                      flags=re.MULTILINE)
    else:
        text = text.replace("for Python 3.10 3.11 3.12 3.13", "for Python 3.11 3.12 3.13", 1)
    path.write_text(text)
    assert problems_with(virtualenv_py_problems(checkout), "differs from what bootstrap_tools/virtualenv_py.py renders")
