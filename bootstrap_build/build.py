"""The build of `make ve` past the no-op, as the README tells it: check the inputs, then in a fresh slot beside
the ve: virtualenv (no seed) -> the seed pip -> one `pip install --no-index --find-links requirements/
--require-hashes` of the lock -> check what was installed -> stamp -> switch the `ve` link. The bytecode is
written behind a seam (fast.py, or plain.py with BOOTSTRAP_FAST=0): the same bytes either way."""

import hashlib
import os
import sys
import time

from bootstrap_build import checks, fast, installed, journal, layout, lockfile, plain, processes, pythons, sdists
from bootstrap_build import slots, state
from bootstrap_build.inputs import python_version
from bootstrap_build.messages import error, step

RUN_VIRTUALENV = os.path.join(os.path.dirname(os.path.abspath(__file__)), "run_virtualenv.py")


def locked_build(args, ve, started, read_inputs, digest_of):
    """`make ve` past the no-op: under the ve's lock and with the inputs settled, switch to the other slot when it
    holds this build, else build; one ERROR line for what can go wrong on the way."""
    try:
        processes.stop_on_signals()
        with slots.exclusive_lock(ve), journal.settled_inputs():
            inputs = read_inputs(ve)  # again: a switch completed meanwhile changes the inputs
            key = digest_of(inputs)
            if not args.force and state.is_current(ve, key):  # built meanwhile by a concurrent `make ve`
                print(f"{args.ve} is up to date (make ve FORCE=1 rebuilds it)")
                return 0
            reason = rebuild_reason(ve, inputs, args.force)
            ready = None if args.force else state.finished_slot(ve, key)
            if ready:
                slots.remove_leftovers(ve)
                slots.switch(ve, ready)
                step(f"switched {args.ve} to {os.path.basename(ready)}, which already holds the build for "
                     f"these inputs ({reason}); nothing rebuilt")
                return 0
            pythons.check_interpreter(lockfile.read_targets())
            step(f"building {args.ve}: {reason}")
            count, pins = build(ve, key, inputs, args.one_slot, args.plain)
    except KeyboardInterrupt:
        error(f"interrupted; {state.describe_ve(ve, args.ve)}. Run `make ve` again.")
    except PermissionError as exc:
        error(slots.permission_message(exc, ve))
    except BrokenPipeError:
        error(f"the output was closed (piped into `head`?), so the build stopped; {state.describe_ve(ve, args.ve)}.")
    except OSError as exc:  # a read-only or full file system, a path that is not a directory
        if exc.errno in processes.NO_SPACE_ERRNOS:
            error(slots.disk_full_message(ve))
        where = exc.filename or ve
        error(f"cannot write {where}: {exc.strerror}. Make {os.path.dirname(where)} writable or pick another VE=...")
    seconds = time.monotonic() - started
    step(f"done: {args.ve} ready, Python {python_version()} ({sys.executable}), {count} packages installed "
         f"(of the lock's {pins} pins, those for this Python), {seconds:.1f} s")
    return 0


def rebuild_reason(ve, inputs, force):
    """Why `ve` is (re)built, in words: the first line a user reads when `make ve` does more than nothing."""
    if force:
        return "FORCE=1"
    if not os.path.lexists(ve):
        return "there is no ve yet"
    stamp = state.read_stamp(ve) if state.our_slot(ve) and state.looks_whole(ve) else None
    if stamp is None:
        return "it holds no finished build of make ve"
    if not stamp["inputs"]:
        return "it was built by an older bootstrap.py"
    reasons = []
    for label, value in inputs:
        was = stamp["inputs"].get(label)
        if was == value:
            continue
        if label == "python":
            reasons.append(f"interpreter {' '.join((was or '?').split()[:2])} -> {' '.join(value.split()[:2])}")
        elif label == "ve":
            reasons.append(f"the checkout was moved or copied (the ve was built at {was})")
        elif was is None:
            reasons.append(f"{label} added")
        elif value == "missing":
            reasons.append(f"{label} removed")
        else:
            reasons.append(f"{label} changed")
    reasons += [f"{label} removed" for label in stamp["inputs"] if label not in dict(inputs)]
    changed = state.drift(ve, stamp)
    if changed:
        reasons.append(f"packages were installed or removed inside it by hand ({changed}); add what you need to "
                       "requirements.in and run `make freeze` instead")
    return "; ".join(reasons) or "its build did not finish"


def build(ve, key, inputs, one_slot=False, plain_path=False):
    """Build into the free slot and switch `ve` to it; return (packages installed, pins in the lock)."""
    umask = os.umask(0o022)  # reading it means setting it: put back at once; the stamp records it
    os.umask(umask)
    checked = checks.verify_inputs()
    if checked.problems:
        more = len(checked.problems) - 1
        error(checked.problems[0] + (f" ({more} more problem(s): `make check` lists them all.)" if more else ""))
    pins = checked.pins
    slots.remove_leftovers(ve)
    if one_slot:
        slots.drop_builds(ve)
    scratch = slots.fresh_dir(layout.scratch_path(ve))
    remover = slots.set_aside_old_build(ve, scratch)
    try:
        slot = slots.pick_slot(ve)
        env = processes.hermetic_env(scratch)
        with (plain if plain_path else fast).Compiler(checked.seed, scratch, env) as compiler:
            compiler.start(slot, pins)  # the fast path compiles the seed and the wheels from here on
            create_env(slot, scratch, env, checked.payload)
            compiler.ve_made()
            install_seed(slot, compiler, checked.seed, umask)
            report = install(slot, pins, scratch, env)
            dependencies = installed.start_dependency_check(slot, env, pins)
            compiler.finish(beside=dependencies)
            output, _ = dependencies.communicate()
        installed.check_env(slot, pins, report, output)
        if not any(pin.name == "pip" for pin in pins):
            remove_seed(slot, checked.seed)
    finally:
        if remover:
            remover.join()
        slots.remove(scratch)
    state.write_stamp(slot, key, inputs, umask)
    slots.switch(ve, slot)
    slots.exclude_from_git(ve)
    return len(state.installed_dists(slot)), len(pins)


def create_env(slot, scratch, env, payload):
    """virtualenv --no-seed from virtualenv.py's verified payload, unpacked into the scratch dir; its app-data is
    the scratch dir's: virtualenv describes the running interpreter in-process and writes nothing there worth
    keeping. No bytecode is written or read: nothing compiled outside this run can steer it."""
    step(f"creating {os.path.relpath(slot, layout.ROOT)} with virtualenv.py for Python {python_version()}")
    tree = os.path.join(scratch, "virtualenv-tree")
    dirs = [os.path.join(tree, name) for name in unpack_virtualenv(payload, tree)]
    # -S: the interpreter's own site-packages and .pth files (the machine's, not ours) stay out of the run.
    # --no-venv-redirect: virtualenv would otherwise drop a PEP 832 `.venv` file beside a pyproject.toml.
    processes.run([sys.executable, "-I", "-S", "-B", RUN_VIRTUALENV, *dirs, "--", "--no-seed", "--no-download",
                   "--no-periodic-update", "--no-venv-redirect", "--app-data", os.path.join(scratch, "app-data"),
                   "--python", sys.executable, slot], env, "virtualenv")


def unpack_virtualenv(payload, tree):
    """The payload's wheel directories for this Python (the rule of virtualenv.py's launcher), unpacked into tree;
    returns their names, in the launcher's order."""
    import io
    import json
    import zipfile

    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        groups = sorted(manifest, key=pythons.python_key)
        dirs = manifest[[group for group in groups if pythons.python_key(group) <= sys.version_info[:2]][-1]]
        members = [name for name in archive.namelist() if name.split("/", 1)[0] in dirs]
        if any(map(checks.unsafe_member, members)):
            error("virtualenv.py's payload holds a path outside its own tree. Restore it with "
                  "`git checkout -- virtualenv.py`.")
        archive.extractall(tree, members)
    return dirs


def install_seed(slot, compiler, seed, umask):
    """Install pip from its verified pure-Python wheel, files and bytecode, then write what pip's installer adds:
    scripts, INSTALLER and their RECORD lines. pip run from a zipped wheel cannot cache bytecode and compiles its
    own source on every run; installed this way it starts compiled (on the fast path), and installs the lock."""
    import configparser

    step(f"seeding {os.path.basename(seed[0])} from {os.path.relpath(layout.SEEDS, layout.ROOT)}/")
    site = layout.site_packages(slot)
    compiler.put_seed(site)
    dist_info = lockfile.wheel_dist_info(seed[0])
    entry_points = configparser.ConfigParser(interpolation=None)
    entry_points.read(os.path.join(site, dist_info, "entry_points.txt"), encoding="utf-8")
    scripts = dict(entry_points["console_scripts"])
    scripts["pip%d.%d" % sys.version_info[:2]] = scripts["pip"]  # pip adds this one itself when it installs pip
    lines = []
    for name, target in sorted(scripts.items()):
        module, _, function = target.partition(":")
        script = (f"{script_header(layout.python_in(slot))}import sys\nfrom {module} import {function}\n\n"
                  f"if __name__ == \"__main__\":\n    sys.exit({function}())\n")
        lines.append(write_installed(os.path.join(slot, "bin", name), script, site, 0o755 & ~umask))
    lines.append(write_installed(os.path.join(site, dist_info, "INSTALLER"), "bootstrap.py\n", site, 0o644 & ~umask))
    record = os.path.join(site, dist_info, "RECORD")
    with open(record, encoding="utf-8") as handle:
        lines[:0] = [handle.read()]
    os.unlink(record)  # a new file, never written in place: it may be a hard link into the seed tree
    with open(record, "w", encoding="utf-8") as handle:
        handle.writelines(lines)


def remove_seed(slot, seed):
    """The seed pip out of a ve whose lock pins no pip: a ve holds the lock's pins and nothing else (a deploy ve has
    no installer in it). Its files as its RECORD lists them, then its top-level directories; all inside our slot."""
    import csv
    import shutil

    site = layout.site_packages(slot)
    with open(os.path.join(site, lockfile.wheel_dist_info(seed[0]), "RECORD"), encoding="utf-8", newline="") as handle:
        paths = [row[0] for row in csv.reader(handle) if row]
    real_slot = os.path.realpath(slot)
    tops = set()
    for relative in paths:
        path = os.path.realpath(os.path.join(site, relative))
        if not path.startswith(real_slot + os.sep):
            continue  # never outside the slot, whatever a RECORD says
        if not relative.startswith(".."):
            tops.add(os.path.join(site, relative.split("/", 1)[0]))
        elif os.path.isfile(path):
            os.unlink(path)  # a script in bin/
    for top in sorted(tops):
        if os.path.isdir(top) and not os.path.islink(top):
            shutil.rmtree(top)


def script_header(python):
    """A shebang for `python`; through /bin/sh where the kernel cannot take the path (a space, or too long),
    which is also when pip's own installer writes this kind of header."""
    import shlex

    if " " not in python and len(python) <= 127:
        return f"#!{python}\n"
    return "#!/bin/sh\n" + "'''exec' " + shlex.quote(python) + ' "$0" "$@"\n' + "' '''\n"


def write_installed(path, text, site, mode):
    """Write a file the wheel does not carry, with `mode` (as pip writes its scripts: less the umask); return its
    RECORD line (path relative to site-packages)."""
    import base64

    data = text.encode()
    with open(path, "wb") as handle:
        handle.write(data)
    os.chmod(path, mode)
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{os.path.relpath(path, site)},sha256={digest},{len(data)}\n"


def install(slot, pins, scratch, env):
    """One pip run installs the whole lock for this Python, offline, every artifact hash-checked; returns the path
    of pip's report."""
    requirements = os.path.join(scratch, "requirements.txt")
    with open(requirements, "w", encoding="utf-8") as handle:
        handle.writelines(f"{pin.hashed_line}\n" for pin in pins)  # from the parsed fields, never the lock's text
    source = sdists.needs_source(slot, env, pins)
    locks = " and ".join(os.path.relpath(path, layout.ROOT) for path in [layout.LOCK, layout.dev_lock()] if path)
    step(f"installing {locks} ({len(pins)} pins, those for this Python) from "
         f"{os.path.relpath(layout.WHEELHOUSE, layout.ROOT)}/ (offline, hashes required)")
    report = os.path.join(scratch, "pip-report.json")
    # Installing wheels needs no program from PATH, and pip, building an HTTP User-Agent even offline, runs
    # `rustc --version` and `lsb_release -a` when PATH has them (~0.1 s): PATH is the ve's bin/ alone, unless
    # sdists are built (their build backends may need a compiler). -B: bytecode is the compiler's job alone.
    (sdists.source_build(source) if source else processes.run)(
        [layout.python_in(slot), "-I", "-B", "-m", "pip", "install", "--isolated", "--no-index", "--find-links",
         layout.WHEELHOUSE, "--no-deps", "--require-hashes", "--only-binary=:all:", "--no-cache-dir",
         "--disable-pip-version-check", "--no-input", "--quiet", "--no-compile", "--report", report,
         *sdists.source_args(source, scratch), "-r", requirements],
        env if source else dict(env, PATH=os.path.join(slot, "bin")), "pip install")
    return report
