"""`make verify`: the current build against itself, offline: every installed file against its RECORD hash and the
mode its umask gives, every .pyc against what compiling its verified source gives, the distributions against the
build's stamp."""

import hashlib
import os

from bootstrap_build import state
from bootstrap_build.messages import error, step


def verify(ve, name):
    """`make verify`: every installed file against its RECORD hash and mode, every .pyc against what compiling its
    verified source gives, and the distributions against the build's."""
    import base64
    import csv

    slot = state.our_slot(ve)
    stamp = state.read_stamp(slot) if slot and state.finished(slot) else None
    if stamp is None:
        error(f"{name} holds no finished build of make ve to verify. Run `make ve` first.")
    site = state.built_site_packages(slot)
    problems, checked, sources, listed = [], 0, {}, set()
    # A build gives every file 666 or 777 less its umask (the stamp records it; older stamps do not).
    modes = {0o666 & ~stamp["umask"], 0o777 & ~stamp["umask"]} if stamp["umask"] is not None else None
    changed = state.drift(slot, stamp)
    if changed:
        problems.append(f"distributions installed or removed by hand since the build: {changed}")
    for dist in state.installed_dists(slot):
        try:
            with open(os.path.join(site, dist, "RECORD"), encoding="utf-8", newline="") as handle:
                rows = list(csv.reader(handle))
        except OSError as exc:
            problems.append(f"{dist}/RECORD cannot be read: {exc.strerror}")
            continue
        for row in rows:
            if len(row) < 2 or not row[1].startswith("sha256="):
                continue
            path = os.path.normpath(os.path.join(site, row[0]))
            listed.add(path)
            try:
                with open(path, "rb") as handle:
                    data = handle.read()
            except OSError:
                problems.append(f"{os.path.relpath(path, slot)} is missing (listed by {dist})")
                continue
            checked += 1
            actual = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            if actual != row[1][len("sha256="):]:
                problems.append(f"{os.path.relpath(path, slot)} was changed (its RECORD in {dist} says otherwise)")
                continue
            sources[path] = data
            if modes and os.stat(path).st_mode & 0o777 not in modes:
                problems.append(f"{os.path.relpath(path, slot)} has mode {os.stat(path).st_mode & 0o777:o}, which no "
                                f"build under its umask {stamp['umask']:03o} gives")
    compiled, bytecode_problems = verify_bytecode(site, sources, listed)
    problems += [f"{os.path.relpath(path, slot)} {problem}" for path, problem in bytecode_problems]
    for problem in problems:
        print(f"  - {problem}")
    if problems:
        error(f"{name} differs from its build in {len(problems)} place(s), listed above. Never change the ve by "
              "hand: `make ve FORCE=1` rebuilds it from the lock.")
    step(f"verify: {checked} files of {len(state.installed_dists(slot))} distributions in {name} match their RECORD, "
         f"and {compiled} .pyc files what compiling their source gives")
    return 0


def verify_bytecode(site, sources, listed):
    """(how many .pyc match, [(path, problem)]): every .pyc under site that no RECORD lists (a build writes them:
    pip runs with --no-compile) must be the checked-hash bytecode of its verified source, as the compile workers
    make it (the seed's named by its place in site-packages, the others by their path): the same header, and a
    code object equal to the one compiling gives (equal code, constants, names, line table). Not the bytes
    themselves: marshal marks objects shared by reference counts, which depend on what else the process holds."""
    import marshal
    from importlib.util import MAGIC_NUMBER, source_from_cache, source_hash

    matched, problems = 0, []
    for directory, _, names in os.walk(site):
        if os.path.basename(directory) != "__pycache__":
            continue
        for name in sorted(names):
            pyc = os.path.join(directory, name)
            if pyc in sources or not name.endswith(".pyc"):
                continue  # a .pyc a wheel ships is in its RECORD, checked by hash
            try:
                source = source_from_cache(pyc)
            except ValueError:
                problems.append((pyc, "is bytecode of no module"))
                continue
            if source not in sources:
                if source not in listed:  # a changed or missing source is named already
                    problems.append((pyc, "is bytecode whose source no RECORD lists"))
                continue
            with open(pyc, "rb") as handle:
                data = handle.read()
            try:
                code = compile(sources[source], source, "exec", dont_inherit=True)
                found = marshal.loads(data[16:])
            except (SyntaxError, ValueError, EOFError, TypeError):
                code = found = None
            if data[:16] == MAGIC_NUMBER + b"\3\0\0\0" + source_hash(sources[source]) and code and code == found:
                matched += 1
            else:
                problems.append((pyc, "is not what compiling its source gives (changed after the build)"))
    return matched, problems
