"""`make freeze` and `make freeze-upgrade`: re-lock requirements.in and make requirements/ hold exactly its pins.

freeze-upgrade also moves every pin to the newest allowed, refreshes the seed wheel in virtualenv_support/ and
regenerates virtualenv.py from the newest virtualenv. The new state is built aside in build/freeze/ and
verified before anything in the tree changes: a failed compile or download leaves requirements.txt,
requirements/, virtualenv_support/ and virtualenv.py exactly as they were, and nothing is pruned.
"""

import argparse
import email.parser
import os
import shutil
import sys
import time
import zipfile
from pathlib import Path

from packaging import tags
from packaging.specifiers import SpecifierSet
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from tools import lockfile, pins_file, report, seeds
from tools.run import ToolError, fail, hermetic_env, run

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS_IN = ROOT / "requirements.in"
LOCK = ROOT / "requirements.txt"
WHEELHOUSE = ROOT / "requirements"
BUILD = ROOT / "build"
REPORT = BUILD / "freeze-report.txt"


def step(message):
    print(f"==> {message}", flush=True)


def main(argv):
    args = parse_args(argv)
    started = time.monotonic()
    try:
        staging = fresh_dir(BUILD / "freeze")
        env = hermetic_env(staging / "home", {"PIP_CACHE_DIR": str(BUILD / "cache" / "pip")})
        lock_text = compile_lock(staging, env, args)
        pins = parse_lock(lock_text)
        staged = fetch(pins, staging, env, args.index_url)
        verify(pins, staged, args.targets)
        seed = virtualenv_py = None
        if args.upgrade:
            seed = stage_seed(pins, staged, staging, env, args.index_url)
            virtualenv_py = stage_virtualenv_py(staging, env, args.index_url)
        before = LOCK.read_text(encoding="utf-8") if LOCK.exists() else "", report.snapshot(ROOT)
        apply(lock_text, pins, staged, seed, virtualenv_py)
        shutil.rmtree(staging)
    except ToolError as exc:
        fail(f"{exc} Nothing was changed: the lock, requirements/, virtualenv_support/ and virtualenv.py "
             "are as they were.")
    text = report.render(before[0], lock_text, before[1], report.snapshot(ROOT))
    REPORT.write_text(text, encoding="utf-8")
    step(f"done: {len(pins)} pins, {len(staged)} artifacts, {time.monotonic() - started:.1f} s "
         f"(report also in {REPORT.relative_to(ROOT)})")
    print(text, end="")
    return 0


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upgrade", action="store_true", help="upgrade every pin to the newest allowed")
    parser.add_argument("--index-url", default="", help="package index to use (default: pip's own default)")
    parser.add_argument("--targets", default="3.11 3.12 3.13", type=str.split,
                        help="the Python versions (X.Y) the lock must fit, space-separated")
    return parser.parse_args(argv)


def fresh_dir(path):
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def index_args(index_url):
    return ["--index-url", index_url] if index_url else []


def compile_lock(staging, env, args):
    """pip-compile into a staged copy of the lock, keeping its pins unless upgrading."""
    step("locking requirements.in with pip-compile" + (" (upgrading every pin)" if args.upgrade else ""))
    staged_lock = staging / "requirements.txt"
    if LOCK.exists():
        shutil.copyfile(LOCK, staged_lock)
    argv = [sys.executable, "-m", "piptools", "compile", "--quiet", "--generate-hashes", "--allow-unsafe",
            "--strip-extras", "--no-emit-index-url", "--no-emit-find-links", "--no-emit-trusted-host",
            "--no-emit-options", "--cache-dir", BUILD / "cache" / "pip-tools", "--pip-args", "--isolated",
            "--output-file", staged_lock, *index_args(args.index_url), REQUIREMENTS_IN.name]
    if args.upgrade:
        argv.append("--upgrade")
    run(argv, cwd=ROOT, env={**env, "CUSTOM_COMPILE_COMMAND": "make freeze"})
    body = staged_lock.read_text(encoding="utf-8")
    return lockfile.HEADER.format(targets=" ".join(args.targets)) + body


def parse_lock(lock_text):
    pins, problems = lockfile.parse(lock_text)
    if problems:
        raise ToolError(f"pip-compile wrote an unusable line `{problems[0].line}`: {problems[0].message}.")
    return pins


def fetch(pins, staging, env, index_url):
    """Stage one verified artifact per pin: reuse requirements/ where its hash fits, download the rest."""
    existing = {lockfile.sha256(path): path for path in WHEELHOUSE.glob("*") if path.is_file()}
    staged, missing = {}, []
    for pin in pins:
        reusable = sorted(existing[h] for h in pin.hashes if h in existing)
        if reusable:
            staged[pin] = reusable[0]
        else:
            missing.append(pin)
    if missing:
        step(f"downloading {len(missing)} artifacts: {', '.join(map(str, missing))}")
        downloads = staging / "downloads"
        wanted = staging / "download.txt"
        # Markers dropped: requirements/ holds the artifacts of every target, not just this interpreter's.
        wanted.write_text("".join(
            f"{pin} " + " ".join(f"--hash=sha256:{h}" for h in sorted(pin.hashes)) + "\n" for pin in missing))
        try:
            run([sys.executable, "-m", "pip", "download", "--isolated", "--no-deps", "--only-binary=:all:",
                 "--require-hashes", "--dest", downloads, *index_args(index_url), "-r", wanted], env=env)
        except ToolError as exc:
            raise ToolError(f"could not download every artifact (a pin with no wheel, or the index is "
                            f"unreachable); fix the cause and run make freeze again. {exc}") from None
        by_hash = {lockfile.sha256(path): path for path in downloads.iterdir()}
        for pin in missing:
            found = [by_hash[h] for h in sorted(pin.hashes) if h in by_hash]
            if not found:
                raise ToolError(f"pip download returned no artifact for {pin} matching its hashes.")
            staged[pin] = found[0]
    return staged


def verify(pins, staged, targets):
    """Each staged artifact is a wheel whose tags and Requires-Python fit every target."""
    step(f"verifying {len(staged)} artifacts for Python {' '.join(targets)}")
    for pin in pins:
        path = staged[pin]
        if lockfile.sha256(path) not in pin.hashes:
            raise ToolError(f"{path.name} does not match the hashes of {pin}.")
        for target in targets:
            reason = unfit_reason(path, target)
            if reason:
                raise ToolError(f"{path.name} ({pin}) does not fit Python {target}: {reason}.")


def target_tags(target):
    version = tuple(int(part) for part in target.split("."))
    return set(tags.cpython_tags(python_version=version)) | set(tags.compatible_tags(python_version=version))


def unfit_reason(path, target):
    """Why a wheel cannot be installed on Python `target` on this platform, or None if it can."""
    try:
        _, _, _, wheel_tags = parse_wheel_filename(path.name)
    except InvalidWheelFilename:
        return "not a wheel (only wheels are supported for now)"
    if not wheel_tags & target_tags(target):
        return f"its tags {', '.join(sorted(map(str, wheel_tags)))} are not supported there"
    requires_python = wheel_metadata(path).get("Requires-Python")
    if requires_python and not SpecifierSet(requires_python).contains(target, prereleases=True):
        return f"it requires Python {requires_python}"
    return None


def wheel_metadata(path):
    with zipfile.ZipFile(path) as archive:
        name = next(n for n in archive.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA"))
        return email.parser.HeaderParser().parsestr(archive.read(name).decode("utf-8"))


def stage_seed(pins, staged, staging, env, index_url):
    """The seed is the lock's own pip wheel when the lock pins pip (one file, stored once by git)."""
    step("refreshing the seed wheel for virtualenv_support/")
    locked_pip = [staged[pin] for pin in pins if pin.name == "pip"]
    if locked_pip:
        return locked_pip[0]
    return seeds.download(staging / "seeds", env, "", index_url)


def stage_virtualenv_py(staging, env, index_url):
    """Re-lock virtualenv and its dependencies per Python, then build virtualenv.py, all inside staging."""
    step("regenerating virtualenv.py from the newest virtualenv")
    lock_file, output = staging / "virtualenv.txt", staging / "virtualenv.py"
    common = [sys.executable, "-m", "tools.virtualenv_py", "--lock-file", lock_file,
              *(["--index-url", index_url] if index_url else [])]
    run([*common, "lock"], cwd=ROOT, env=env)
    run([*common, "build", "--output", output, "--cache", BUILD / "cache" / "virtualenv-wheels"], cwd=ROOT, env=env)
    return lock_file, output


def replace_file(source, target):
    """Copy source over target so that a reader sees the old file or the new one, never half of one."""
    partial = target.with_name(f".{target.name}.part")
    shutil.copyfile(source, partial)
    os.replace(partial, target)


def write_file(target, text):
    partial = target.with_name(f".{target.name}.part")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, target)


def apply(lock_text, pins, staged, seed, virtualenv_py):
    """Add new artifacts, switch each file atomically, and prune only after everything new is in place."""
    WHEELHOUSE.mkdir(exist_ok=True)
    keep = {path.name for path in staged.values()}
    for path in staged.values():
        if path.parent != WHEELHOUSE:
            replace_file(path, WHEELHOUSE / path.name)
    if seed:
        seeds.install(seed)
    if virtualenv_py:
        replace_file(virtualenv_py[0], ROOT / "tools" / "virtualenv.txt")
        replace_file(virtualenv_py[1], ROOT / "virtualenv.py")
    write_file(LOCK, lock_text)
    write_file(ROOT / pins_file.NAME, pins_file.render(pins))
    for path in WHEELHOUSE.glob("*"):
        if path.name not in keep:
            path.unlink()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
