"""One lock for every target Python.

pip-compile resolves only for the interpreter that runs it, and silently drops dependencies whose markers do
not hold there (pytest needs tomli only below 3.11). So `make freeze` runs it once per target, under that
target's own interpreter, and merges the results: a line that holds for every target stays plain, the others
carry a python_version marker. Artifacts are then fetched per target, preferring pure-Python wheels.
Under RESOLUTION=fewest (the default) the targets are then brought to one version of each package wherever one
fits them all (unify.py); RESOLUTION=newest keeps each target's own newest.

Each target is resolved for its whole minor version, as if its Python were X.Y.0 (resolved_as), whatever patch
release of X.Y runs pip-compile here: the lock is then the same on every machine that freezes it.

Nothing unpinned runs: resolution is wheels only (`--only-binary=:all:` reaches pip-compile's pip, so no
sdist's setup.py is run to read its metadata), and another target's pip-compile runs in that Python's tools env,
built by bootstrap.py from the tools lock and bootstrap_tools/wheels/ by their hashes, never from the index.
"""

import json
import os
import re
import shlex
import shutil
import sys
import threading
import time
from pathlib import Path

from packaging import tags as packaging_tags
from packaging.markers import InvalidMarker, Marker, default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

from bootstrap_build import lockfile as build_lockfile
from bootstrap_tools import cooldown, lockfile, parallel, platforms, unify
from bootstrap_tools.platforms import Pair, python_of
from bootstrap_tools.pythons import find_python, marker_for, python_minor, running_target
from bootstrap_tools.run import (
    ToolError, failure_cause, index_args, run, run_step, step_failure, unreachable, without_tracebacks,
)
from bootstrap_tools.seeds import read_sums
from bootstrap_tools.wheels import full_version, is_artifact_of, is_sdist, names_pin, unfit_reason, wheel_metadata

MERGE_NOTE = (
    "# Compiled by pip-compile (pip-tools) under each target's own interpreter, then merged:\n"
    "# a line that holds only for some targets carries a python_version marker.\n"
)
PLATFORMS_MERGE_NOTE = (
    "# Compiled by pip-compile (pip-tools) under each target's own interpreter, as on each declared platform\n"
    "# (platforms/*.json), then merged: a line that holds only for some (platform, Python) pairs carries a\n"
    "# sys_platform, platform_machine or python_version marker.\n"
)
COMPILE_FLAGS = ("--quiet", "--generate-hashes", "--allow-unsafe", "--strip-extras", "--no-emit-index-url",
                 "--no-emit-find-links", "--no-emit-trusted-host", "--no-emit-options", "--no-header",
                 "--pip-args", "--isolated --only-binary=:all:")
# Under the staging area: metadata-only wheels of the locked sdists (sdists.offer_locked), offered to pip-compile.
LOCKED_SDISTS = "locked-sdists"
# pip's words for a requirement it found no wheel for: that name may then be resolved from its sdist (sdists.py).
NO_WHEEL = re.compile(r"(?:No matching distribution found for|Could not find a version that satisfies the "
                      r"requirement) ([A-Za-z0-9][A-Za-z0-9._-]*)")


class NoWheel(Exception):
    """pip-compile found no wheel for these names; they may be resolved from their sdists."""

    def __init__(self, names):
        super().__init__(" ".join(sorted(names)))
        self.names = set(names)


# ---------------------------------------------------------------- compile


def compile_all(root, targets, staging, env, upgrade, index_url, previous_pins, constraints=(),
                no_binary=None, resolution="fewest", jobs=1, source="requirements.in", fixed=()):
    """pip-compile `source` under each target; return (merged lock body without our header, splits).

    previous_pins: {target: [pins the current lock has for it]}, kept unless upgrading; constraints: constraint
    files; no_binary: a set of names that have no wheel, resolved from their sdists (sdists.py; names found missing a
    wheel are added to it); resolution: "fewest" (one version of each package for every target where one fits,
    see unify.py) or "newest" (each target its own newest). splits: {name: [why no single version fits]} for
    the packages left with more than one version under "fewest"; None under "newest", which does not try.
    jobs: how many targets pip-compile resolves at once (parallel.py); the result is the same for any number.
    source: what is locked (requirements.in, or the dev set's requirements-dev.in); fixed: constraint files that
    always hold, never dropped like `constraints` (the runtime lock's pins, for the dev set).
    """
    results, unconstrained, pythons = {}, {}, {}
    no_binary = set() if no_binary is None else no_binary
    envs = {}  # one after another: the pairs of one Python share its environment
    for target in targets:
        if python_of(target) not in envs:
            envs[python_of(target)] = tool_python(root, python_of(target), staging, env)
        pythons[target] = envs[python_of(target)]
    notes = {}  # one probe per interpreter: the pairs of one Python share it
    for target in targets:
        if str(pythons[target]) not in notes:
            notes[str(pythons[target])] = interpreter_note(pythons[target], target, env)
    named = {target: notes[str(pythons[target])] for target in targets}

    def first_pass(target, names):
        """(pip-compile's output, the failure that made it drop the constraints or None); `names` grows."""
        def compile_target(allowed, constraints=constraints):
            return compile_one(root, pythons[target], target, staging, env, upgrade, index_url, previous_pins,
                               [*fixed, *constraints], allowed, source=source, interpreter=named[target])

        try:
            return compile_allowing_sdists(compile_target, names), None
        except ToolError as exc:
            # Pins frozen on one Python (an adopted project's requirements.txt) may not all exist for another:
            # they hold where they can; a target where they cannot is resolved on its own, and said so.
            if not constraints or exc.output is None:
                raise
            if fixed:  # the dev set never moves a runtime pin: without them, it would be another resolution
                raise
            print(f"==> the constraints cannot all hold for Python {target}; resolving it without them", flush=True)
            return compile_allowing_sdists(lambda allowed: compile_target(allowed, ()), names), exc

    # Side by side, each target starts from the names without a wheel known before any ran; one after another, a
    # target starts from those its predecessors found too. Where they differ, the target is resolved again as the
    # sequential run would have, so the lock is the same for any number of jobs.
    start, side_by_side_run = frozenset(no_binary), jobs > 1 and len(targets) > 1
    if side_by_side_run:
        print(f"==> pip-compile for {len(targets)} targets, {min(jobs, len(targets))} at a time (FREEZE_JOBS)",
              flush=True)

    def side_by_side(target):
        names = set(start if side_by_side_run else no_binary)
        return first_pass(target, names) + (names,)

    for target, (text, failure, names) in parallel.in_order(targets, side_by_side, jobs):
        if side_by_side_run and no_binary != start:
            names = set(no_binary)
            text, failure = first_pass(target, names)
        no_binary |= names
        results[target] = text
        if failure is not None:
            unconstrained[target] = failure
    if unconstrained and len(unconstrained) == len(targets):
        raise next(iter(unconstrained.values()))
    splits = None
    if resolution == "fewest":
        def attempt(target, proposal, text):
            # Never --upgrade here: the first pass already moved what was asked, and its choices are the pins.
            seed = {target: unify.seed_lines(text, proposal)}
            return compile_one(root, pythons[target], target, staging, env, False, index_url, seed,
                               [*fixed, *(() if target in unconstrained else constraints)], sorted(no_binary),
                               tentative=True, source=source, interpreter=named[target])

        def precheck(target, name, version):
            return download_reason(pythons[target], target, name, version, staging, env, index_url)

        def precheck_many(target, asks):
            return download_reasons(pythons[target], target, asks, staging, env, index_url)

        def diagnose(target, name, version, cause):
            # It installs there alone (or precheck would have said so): the rest of that target's requirements
            # exclude it.
            return (precheck(target, name, version) or f"{name} {version} does not resolve together with the other "
                    f"requirements on Python {target}" + (f" ({cause})" if cause else ""))

        results, splits = unify.unify(results, targets, attempt, diagnose,
                                      step=lambda text: print(f"==> {text}", flush=True), precheck=precheck,
                                      each=lambda items, work: parallel.in_order(items, work, jobs),
                                      precheck_many=precheck_many)
    return merge(results, targets), splits


def download_reasons(python, target, asks, staging, env, index_url):
    """{(name, version): download_reason} for several at once: one `pip download --no-deps` of them all, which is
    the usual answer (each installs there alone: None); when it fails, each is asked alone for its reason."""
    if len(asks) > 1:
        try:
            run(alone_argv(python, target, staging, env, index_url, asks), env=env)
            missing_variables(target, staging)
            return {ask: None for ask in asks}
        except ToolError:
            pass  # one of them, at least: asked alone below, each with its own reason
    return {(name, version): download_reason(python, target, name, version, staging, env, index_url)
            for name, version in asks}


def download_reason(python, target, name, version, staging, env, index_url):
    """Why `name==version` alone cannot install on Python `target` (Requires-Python, no fitting wheel), or None:
    pip's own answer, asked under that target's interpreter without resolving anything else."""
    try:
        run(alone_argv(python, target, staging, env, index_url, [(name, version)]), env=env)
        missing_variables(target, staging)
        return None
    except ToolError as exc:
        return unify.reason_from_download(exc.output or "", name, version, target)


def alone_argv(python, target, staging, env, index_url, asks):
    """`pip download --no-deps` of each name==version of `asks` under `target`'s interpreter: no resolution."""
    return [*launcher(python, target, staging, "pip"), "download", "--isolated", "--no-deps", "--only-binary=:all:",
            *(http_cache_args(env) or ["--no-cache-dir"]), "--dest", staging / "why-not" / slug(target),
            *index_args(index_url), *(f"{name}=={version}" for name, version in asks)]


def compile_flags(flags, no_binary):
    """COMPILE_FLAGS with `--no-binary` for the names that have no wheel (after --only-binary, which it narrows)."""
    if not no_binary:
        return flags
    flags = list(flags)
    flags[-1] += f" --no-binary={','.join(sorted(no_binary))}"
    return tuple(flags)


def raise_for_missing_wheels(output, no_binary):
    """After a failed pip-compile: NoWheel for requirements with no wheel that are not yet allowed as sdists."""
    missing = {canonicalize_name(name) for name in NO_WHEEL.findall(output or "")} - set(no_binary)
    if missing:
        raise NoWheel(missing)


def compile_allowing_sdists(compile_one, no_binary):
    """compile_one(names) until it stops asking for sdists; `no_binary` (a set) grows with the names found.

    Each retry allows one more name: a name with neither a wheel nor an sdist fails the retry with pip's own
    message, which compile_one reports. The sdists themselves are fetched and built later (sdists.py).
    """
    for _ in range(50):
        try:
            return compile_one(frozenset(no_binary))
        except NoWheel as exc:
            print(f"==> no wheel for {', '.join(sorted(exc.names))}: resolving it from its sdist (built at freeze, "
                  "see requirements-build.txt)", flush=True)
            no_binary |= exc.names
    raise ToolError("pip-compile kept finding requirements with no wheel: fix requirements.in.")


def tool_python(root, target, staging, env, envs=None):
    """An interpreter of `target` with pip-tools: this one if it is that version, else the tools env of that Python.

    That env is `bootstrap.py --tools` run under the target's interpreter into `<envs>/tools-X.Y` (the build area by
    default): the same build, slots and input key as the tools env itself, from bootstrap_tools/tools.txt and
    bootstrap_tools/wheels/ by their hashes, offline. It is kept between freezes (a no-op while its inputs are
    unchanged, rebuilt when they or the interpreter change); `make clean` removes it. The seed pip is checked
    against the tools lock here first, as bootstrap.py checks it against SHA256SUMS.
    """
    if target == running_target():
        return sys.executable
    dest = Path(envs or Path(root) / ".bootstrap") / f"tools-{target}"
    base = find_python(target, staging / "home")
    if base is None:
        raise ToolError(f"no CPython {target} found (python{target} on PATH or under pyenv): install it or "
                        f"drop {target} from TARGET_PYTHONS.")
    verified_seed(root, target, staging)
    tool_pins(root, target, tools_pins(root))  # a Python the tools lock does not cover: said before any build
    run_step([base, "-I", "-S", "-B", Path(root) / "bootstrap.py", "--tools", "--ve", dest],
             f"building the tools env for Python {target} ({dest.name})",
             f"fix the cause and run `make freeze` again (or drop {target} from TARGET_PYTHONS).", env=env)
    return dest / "bin" / "python"


def tools_wheels(root):
    return Path(root) / "bootstrap_tools" / "wheels"


def tools_pins(root):
    """The pins of the convention's tools lock (bootstrap_tools/tools.txt): what every tools env holds."""
    path = Path(root) / "bootstrap_tools" / "tools.txt"
    try:
        pins, problems = lockfile.parse(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ToolError(f"cannot read bootstrap_tools/tools.txt ({exc}): restore it with "
                        "`git checkout -- bootstrap_tools`.") from None
    if problems:
        raise ToolError(f"bootstrap_tools/tools.txt: {problems[0]}")
    return pins


def verified_seed(root, target, staging):
    """A private copy of the tools' pip wheel whose sha256 their SHA256SUMS records and their lock's pip allows.

    The copy is what runs, and the copy is what is checked, so a file swapped meanwhile never runs.
    """
    seeds = tools_wheels(root)
    wheels = sorted(seeds.glob("pip-*.whl"))
    fix = "run `make check` and fix what it lists (`git checkout -- bootstrap_tools`)."
    if len(wheels) != 1:
        raise ToolError(f"refusing to run a seed pip for Python {target}: bootstrap_tools/wheels/ has {len(wheels)} "
                        f"pip wheels, not one: {fix}")
    private = staging / "seed" / target / wheels[0].name
    private.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(wheels[0], private)
    digest = lockfile.sha256(private)
    recorded = read_sums(seeds / "SHA256SUMS")[0] or {}
    pip_pins = [pin for pin in tools_pins(root) if pin.name == "pip"]
    if recorded.get(private.name) != digest:
        why = "does not match bootstrap_tools/wheels/SHA256SUMS"
    elif not any(is_artifact_of(private.name, digest, pin) for pin in pip_pins):
        why = f"is not an artifact of the pip that bootstrap_tools/tools.txt pins (sha256 {digest})"
    else:
        why = unfit_reason(private, target)
    if why:
        raise ToolError(f"refusing to run the seed pip for Python {target}: bootstrap_tools/wheels/{private.name} "
                        f"{why}: {fix}")
    return private


def tool_pins(root, target, lock_pins):
    """The lock's pins of pip-tools and everything it needs on `target`, read from their wheels' Requires-Dist."""
    pins = {}
    for pin in lock_pins:
        if pin.applies_to(target):
            pins.setdefault(pin.name, pin)
    files = {path: lockfile.sha256(path) for path in sorted(tools_wheels(root).glob("*.whl"))}
    environment = dict(default_environment(), python_version=target, python_full_version=full_version(target),
                       extra="")
    chosen, queue = {}, [("pip-tools", "requirements.in")]
    while queue:
        name, wanted_by = queue.pop(0)
        if name in chosen:
            continue
        pin = pins.get(name)
        if pin is None:
            raise ToolError(f"bootstrap_tools/tools.txt pins no {name} for Python {target} ({wanted_by} needs it to "
                            f"run pip-compile there; pip-tools comes only from bootstrap_tools/wheels/, never from "
                            f"the index): drop {target} from TARGET_PYTHONS, or adopt a convention whose tools lock "
                            f"covers it.")
        wheels = [path for path, digest in files.items()
                  if is_artifact_of(path.name, digest, pin) and unfit_reason(path, target) is None]
        if not wheels:
            raise ToolError(f"bootstrap_tools/wheels/ has no artifact of {pin} that fits Python {target} (needed "
                            f"to run pip-compile there): restore it with `git checkout -- bootstrap_tools`.")
        chosen[name] = pin
        for line in wheel_metadata(wheels[0]).get_all("Requires-Dist") or []:
            try:
                requirement = Requirement(str(line))
                if requirement.marker is None or requirement.marker.evaluate(environment):
                    queue.append((canonicalize_name(requirement.name), str(pin)))
            except (InvalidRequirement, InvalidMarker) as exc:
                raise ToolError(f"{wheels[0].name} has an unreadable Requires-Dist `{line}` ({exc}).") from None
    return sorted(chosen.values(), key=lambda pin: pin.name)


def compile_one(root, python, target, staging, env, upgrade, index_url, previous_pins, constraints=(), no_binary=(),
                tentative=False, source="requirements.in", interpreter=""):
    """pip-compile for one target, seeded with that target's previous pins so they are kept.

    Wheels only, except for the names in `no_binary` (no wheel exists for them: their sdists are resolved).
    Raises NoWheel naming requirements that have no wheel but might have an sdist.
    tentative: a failure raises unify.Unresolvable (the caller tries something else) instead of ending the freeze.
    interpreter: what the progress line says of `python` (interpreter_note).
    """
    output = staging / f"{Path(source).stem}-{slug(target)}.txt"
    output.write_text("".join(f"{pin}\n" for pin in previous_pins.get(target, [])), encoding="utf-8")
    flags = list(compile_flags(COMPILE_FLAGS, no_binary))
    # pip-compile's --cache-dir is pip-tools' dependency cache (per pair: what a wheel needs differs between pairs)
    # and pip's cache too; pip's own --cache-dir in --pip-args comes after it, so pip's HTTP cache is the shared one.
    flags[-1] += "".join(f" {shlex.quote(str(arg))}" for arg in http_cache_args(env))
    argv = [*launcher(python, target, staging, "piptools"), "compile", *flags,
            "--cache-dir", root / ".bootstrap" / "cache" / f"pip-tools-{slug(target)}",
            "--output-file", output, *index_args(index_url), *cooldown.kept_args(), *locked_sdists_args(staging),
            *[arg for path in constraints for arg in ("--constraint", path)], source]
    if upgrade is True:
        argv.append("--upgrade")
    elif upgrade:  # only these packages (and what they need) may move
        argv += [arg for name in upgrade for arg in ("--upgrade-package", name)]
    print(f"==> pip-compile for Python {target}" + ("" if source == "requirements.in" else f" ({source})")
          + (f" ({interpreter})" if interpreter else ""), flush=True)
    try:
        run(argv, cwd=root, env=env)
        missing_variables(target, staging)
    except ToolError as exc:
        missing_variables(target, staging)
        if exc.output is not None and not unreachable(exc.output):
            if tentative:
                raise unify.Unresolvable(failure_cause(without_tracebacks(exc.output))) from None
            raise_for_missing_wheels(exc.output, no_binary)
        raise step_failure(exc, f"pip-compile for Python {target}",
                           f"fix {source} (or INDEX_URL" + (", CONSTRAINTS" if constraints else "")
                           + ") and run `make freeze` again"
                           + (" (the dev set is locked with the runtime lock's pins held fixed: a dev requirement "
                              "that needs another version of a runtime pin cannot be locked)"
                              if source != "requirements.in" else "") + ".", index=index_url) from None
    return output.read_text(encoding="utf-8")


def locked_sdists_args(staging):
    """--find-links for the metadata of the locked sdists (sdists.offer_locked), when this freeze has any."""
    offered = staging / LOCKED_SDISTS
    return ["--find-links", offered] if offered.is_dir() else []


def http_cache_args(env):
    """pip's option for the one HTTP cache every pair shares (PIP_CACHE_DIR of the freeze's environment; pip's cache
    is safe across processes), given on the command line: --isolated keeps pip from reading PIP_* variables."""
    cache = (env or {}).get("PIP_CACHE_DIR")
    return ["--cache-dir", cache] if cache else []


def slug(target):
    """A target as a file name part: `3.12`, or `macos-arm64-3.12` for a (platform, Python) pair."""
    return target.slug() if isinstance(target, Pair) else str(target)


# How resolved_as names a target's release; in the freeze's inputs (inputs_digest.py), so that a lock resolved by an
# older rule is resolved again rather than kept as unchanged.
RESOLVED_AS = "X.Y.0"


def resolved_as(target):
    """The Python release a target is resolved for: X.Y.0, whichever patch release of X.Y runs pip-compile.

    A lock serves every host of X.Y, and a marker may name a patch release (redis 8.0.1 needs
    `async-timeout; python_full_version < "3.11.3"`): resolved as the patch release found here, the lock would
    follow the machine that froze it (with no async-timeout from a 3.11.7, which a 3.11.2 host then lacks), and the
    next freeze elsewhere would undo it. X.Y.0 is the oldest host the target admits, so what a `<` marker adds for
    the older patch releases is locked; a newer host installs it too (the lock's line carries a python_version
    marker only), which is harmless. It is also what `make check` and the declared platforms (platforms.Pair)
    assume. Keeping the metadata's python_full_version markers instead would need one resolution per patch
    boundary. A requirement from a later patch release only (`>= "X.Y.Z"`) is rare; `make ve` names it and how to
    lock it (bootstrap_build/dependency_check.py).
    """
    return f"{python_of(target)}.0"


def interpreter_note(python, target, env):
    """What a progress line says of the interpreter resolving `target`: its real path, its patch release, and
    the release it resolves as."""
    try:  # platform.python_version() is what pip's markers read as python_full_version
        version = run([python, "-I", "-c", "import platform; print(platform.python_version())"], env=env).strip()
    except ToolError:  # pip-compile under it, next, fails with the cause
        version = "version unknown"
    return f"{os.path.realpath(python)}, {version}, resolved as {resolved_as(target)}"


def launcher(python, target, staging, module):
    """The start of the command that runs `module` (piptools, pip) under `python` for `target`.

    Through as_platform.py, so pip's markers see the Python as resolved_as(target) gives it. For a
    (platform, Python) pair, the rest of pip's marker environment and its tag list become the pair's (its
    descriptor's), so pip-compile resolves, and pip downloads, as on that platform.
    """
    spec = staging / "platform-specs" / f"{slug(target)}.json"
    missing = spec.with_suffix(".missing")
    if not spec.exists():
        python_half = {"python_version": python_of(target), "python_full_version": resolved_as(target),
                       "implementation_version": resolved_as(target)}
        if isinstance(target, Pair):
            described = target.spec(missing)
            described["environment"] = {**described["environment"], **python_half}
        else:
            described = {"environment": python_half, "this_machine": True, "missing": str(missing)}
        spec.parent.mkdir(parents=True, exist_ok=True)
        spec.write_text(json.dumps(described), encoding="utf-8")
    return [python, "-I", Path(__file__).resolve().parent / "as_platform.py", spec, module]


def missing_variables(target, staging):
    """Raise the one clear error when pip met a marker needing a variable the pair's descriptor lacks."""
    if not isinstance(target, Pair):
        return
    missing = (staging / "platform-specs" / f"{target.slug()}.json").with_suffix(".missing")
    if missing.exists():
        names = sorted(set(missing.read_text(encoding="utf-8").split()))
        why = platforms.missing_variable(", ".join(names), target.platform)
        raise ToolError(f"resolving for Python {target}: {why}")


# ---------------------------------------------------------------- merge


def blocks(text):
    """(requirement line, [its annotation comment lines]) for each requirement of pip-compile's output: the lines
    as the one reader reads them (build_lockfile.logical_lines, pip's rules), white space outside quoted strings made
    single; the annotations, the indented comment lines that follow each."""
    physical = text.splitlines()
    found = list(build_lockfile.logical_lines(text))
    for index, (_, last, line) in enumerate(found):
        end = found[index + 1][0] - 1 if index + 1 < len(found) else len(physical)
        notes = [raw.rstrip() for raw in physical[last:end] if raw[:1].isspace() and raw.strip().startswith("#")]
        parts = re.split(r"(\"[^\"]*\"|'[^']*')", line)
        yield "".join(part if number % 2 else re.sub(r"\s+", " ", part) for number, part in enumerate(parts)), notes


def merge(results, targets):
    """Merge {target: pip-compile output} into one lock body; identical lines stay plain."""
    entries = {}
    for target in targets:
        for line, annotations in blocks(results[target]):
            pin = lockfile.parse_line(line)
            if isinstance(pin, lockfile.Problem):
                raise ToolError(f"pip-compile for Python {target} wrote an unusable line `{line}`: {pin.message}.")
            entry = entries.setdefault((pin.name, pin.version, pin.marker),
                                       {"pin": pin, "targets": [], "hashes": set(), "via": annotations})
            entry["targets"].append(target)
            entry["hashes"] |= pin.hashes
    out = []
    ordered = sorted(entries.items(), key=lambda item: (item[0][0], Version(item[0][1])))
    for (name, version, own_marker), entry in ordered:
        python_marker = (platforms.pair_marker(entry["targets"], targets) if isinstance(targets[0], Pair)
                         else marker_for(entry["targets"], targets))
        if python_marker and own_marker and selects(own_marker, targets) == entry["targets"]:
            python_marker = None  # requirements.in's own marker already says which targets: not twice
        markers = [f"({m})" if " or " in m else m for m in (own_marker, python_marker) if m]
        requirement = str(entry["pin"]) + (f" ; {' and '.join(markers)}" if markers else "")
        out.append(lockfile.lock_entry(requirement, entry["hashes"]))
        out.extend(f"{line}\n" for line in entry["via"])
    return (PLATFORMS_MERGE_NOTE if isinstance(targets[0], Pair) else MERGE_NOTE) + "".join(out)


def selects(marker, targets):
    """The targets `marker` holds for: a pair's variables from its descriptor (as pip-compile evaluated it for that
    pair); for a plain Python, the other variables as on this machine, where pip-compile evaluated it."""
    return [target for target in targets if platforms.evaluate(Marker(marker), target)]


# ---------------------------------------------------------------- fetch


def fetch_for_targets(pins, targets, candidates, downloads, env, index_url, jobs=1, digest=lockfile.sha256):
    """{pin: [artifact paths]} so that every target a pin applies to has a fitting artifact.

    `candidates` maps path -> sha256 of artifacts already at hand (requirements/); one counts for a pin only
    with the pin's name, version and one of its hashes, and is never downloaded again. The rest are downloaded,
    a pure-Python wheel first, the target's binary wheel only where no pure one exists: one `pip download` per
    target for all it lacks (download_batch), up to `jobs` targets at once. The artifacts chosen are those of one
    download per artifact, target after target (choose); downloads are added to `candidates`.
    digest: sha256 of a path, the freeze's memo (each large artifact is hashed once).
    """
    got = {}  # (target, pin) -> the artifact that target's download fetched for the pin
    for _ in range(len(targets) * max(1, len(pins)) + 1):  # each batch settles at least one (target, pin)
        chosen, fetched, wanted = choose(pins, targets, candidates, got, digest)
        if not wanted:
            break
        batches = plan(wanted, got)
        count = sum(map(len, batches.values()))
        kind = "pair" if isinstance(next(iter(batches)), Pair) else "Python"
        kind += "s" if len(batches) > 1 else ""
        at_once = min(jobs, len(batches))
        say(f"downloading {count} artifact(s) for {len(batches)} {kind}"
            + (f", {at_once} at a time (FREEZE_JOBS)" if at_once > 1 else ""))
        with Progress(downloads, env, len(batches)) as progress:
            for target, found in parallel.in_order(
                    list(batches), lambda target: download_batch(target, batches[target], downloads, env, index_url,
                                                                 digest), jobs):
                got.update(((target, pin), path) for pin, path in found.items())
                progress.done(target, found)
    else:
        raise ToolError("pip download kept returning artifacts that fit no target: run `make freeze` again.")
    for path in fetched:
        candidates[path] = digest(path)
    return chosen


def choose(pins, targets, candidates, got, digest):
    """The artifacts a download per artifact, target after target, would choose, given the downloads so far
    (`got`): for each target and pin, the first fitting artifact at hand (earlier targets' downloads included),
    else that target's own download. (chosen, the downloads chosen, [(target, pin)] still to download)."""
    known = dict(candidates)
    chosen, fetched, wanted = {pin: [] for pin in pins}, [], []
    for target in targets:
        needed = []
        for pin in pins:
            if not pin.applies_to(target):
                continue
            fitting = [path for path in at_hand_of(pin, known) if unfit_reason(path, target) is None]
            if fitting:
                if fitting[0] not in chosen[pin]:
                    chosen[pin].append(fitting[0])
            else:
                needed.append(pin)
        for pin in needed:
            sdist = [path for path in at_hand_of(pin, known) if is_sdist(path.name)]
            if sdist and isinstance(target, Pair):
                # Built at `make ve` there, offline, with the build lock (a wheel is built here for this
                # machine's pairs only).
                if sdist[0] not in chosen[pin]:
                    chosen[pin].append(sdist[0])
                continue
            path = got.get((target, pin))
            if path is None:
                wanted.append((target, pin))
                continue
            known[path] = digest(path)
            chosen[pin].append(path)
            fetched.append(path)
    return chosen, fetched, wanted


def plan(wanted, got):
    """{target: [pins]} to download now, from `wanted` ([(target, pin)], targets in order).

    A later target waits for the next batch, rather than fetch a pin an earlier one fetches in this batch, when
    that one's artifact may be the one it would choose: nothing of the pin was seen yet (it may be pure Python),
    or one seen fits any Python (pure, abi3) and the two share a platform. Otherwise (a wheel per Python) both fetch
    it now. So what one target's download brings is not fetched again for another, and targets run side by side.
    """
    batches = {}
    for target, pin in wanted:
        seen = [path for (_, other), path in got.items() if other == pin]
        if any(pin in pins and (not seen or (platform_of(other) == platform_of(target)
                                             and any(map(any_python, seen))))
               for other, pins in batches.items()):
            continue
        batches.setdefault(target, []).append(pin)
    return batches


def platform_of(target):
    return target.platform if isinstance(target, Pair) else None


def any_python(path):
    """Whether the wheel at `path` fits every Python of its platform (a pure or abi3 wheel)."""
    return any(tag.abi in ("none", "abi3") for tag in parse_wheel_filename(path.name)[3])


def at_hand_of(pin, candidates):
    return [path for path, digest in candidates.items() if is_artifact_of(path.name, digest, pin)]


def download_batch(target, pins, downloads, env, index_url, digest=lockfile.sha256):
    """{pin: artifact}: one `pip download` of every pin for `target`, a pure-Python wheel where one exists, else
    the target's own wheel.

    pip takes, for each pin, the wheel whose tags it ranks first. The tag list it is given (through as_platform.py,
    as a pair's pip-compile is) ranks first the pure tags, what `--implementation py --abi none --platform any`
    accepts for the target's Python, then the target's own: a pair's descriptor (what `pip download --platform ...
    --python-version ... --implementation cp --abi ...` fetches, with its exact tags and order), or for a plain
    Python this machine's tags for it, as pip's `--python-version` lists them. So one run chooses what a pure-Python
    attempt per pin, then one for the target, would.
    """
    name = slug(target)
    wanted = downloads / "requests" / f"{name}.txt"
    spec = downloads / "specs" / f"{name}.json"
    for directory in (wanted.parent, spec.parent):
        directory.mkdir(parents=True, exist_ok=True)
    wanted.write_text("".join(lockfile.hashed_line(pin, pin.hashes) + "\n" for pin in pins), encoding="utf-8")
    spec.write_text(json.dumps(download_spec(target, spec.with_suffix(".missing"))), encoding="utf-8")
    dest = downloads / name
    before = set(dest.glob("*")) if dest.exists() else set()
    listed = ", ".join(map(str, pins[:3])) + (f" and {len(pins) - 3} more" if len(pins) > 3 else "")
    try:
        run([sys.executable, "-I", Path(__file__).resolve().parent / "as_platform.py", spec, "pip", "download",
             "--isolated", "--no-deps", "--only-binary=:all:", "--require-hashes", "--python-version",
             python_of(target), "--dest", dest, *http_cache_args(env), *index_args(index_url), "-r", wanted], env=env)
    except ToolError as exc:
        raise step_failure(exc, f"pip download of {listed} for Python {target}",
                           "a pin with no wheel (its sdist is built only for names that have no wheel at all), or the "
                           "index is unreachable or lost a file: fix the cause and run `make freeze` again.",
                           index=index_url) from None
    new, every = sorted(set(dest.glob("*")) - before), sorted(dest.glob("*"))
    found = {}
    for pin in pins:
        def ours(paths):
            return [path for path in paths if names_pin(path.name, pin) and digest(path) in pin.hashes]

        fetched = ours(new) or ours(every)
        if not fetched:
            raise ToolError(f"pip download returned no artifact for {pin} matching its hashes.")
        found[pin] = fetched[0]
    return found


def download_spec(target, missing):
    """as_platform.py's spec for download_batch: the pure tags of the target's Python first, then the target's."""
    version = python_minor(python_of(target))
    interpreter = "py" + "".join(map(str, version))
    pure = [*packaging_tags.generic_tags(interpreter, ["none"], ["any"]),
            *packaging_tags.compatible_tags(version, interpreter, ["any"])]
    if isinstance(target, Pair):
        own, environment = target.tags(), target.descriptor["environment"]
    else:
        cpython = "cp" + "".join(map(str, version))
        own = [*packaging_tags.cpython_tags(version), *packaging_tags.compatible_tags(version, cpython)]
        here = default_environment()
        environment = {key: here[key] for key in platforms.PLATFORM_VARIABLES}
    ordered = list(dict.fromkeys(str(tag) for tag in [*pure, *own]))
    return {"environment": environment, "tags": ordered, "missing": str(missing)}


class Progress:
    """The download phase's progress lines: one per finished target, and while pip works, every few seconds, the
    bytes come in so far (the staging directory and pip's temporary files, whose total pip learns only per file)."""

    SECONDS = 5

    def __init__(self, downloads, env, count):
        self.places = [downloads, Path((env or {}).get("TMPDIR") or downloads)]
        self.count, self.finished, self.lock = count, 0, threading.Lock()
        self.start = self.size()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.tick, daemon=True)

    def __enter__(self):
        self.last = time.monotonic()
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        self.thread.join()

    def size(self):
        total = 0
        for place in dict.fromkeys(self.places):
            for directory, _, files in os.walk(place):
                for name in files:
                    try:
                        total += os.lstat(os.path.join(directory, name)).st_size
                    except OSError:  # pip moved or removed it meanwhile
                        pass
        return total

    def line(self, text):
        with self.lock:
            self.last = time.monotonic()
            sys.stdout.write(f"==> {text}\n")
            sys.stdout.flush()

    def tick(self):
        while not self.stopped.wait(1):
            if time.monotonic() - self.last >= self.SECONDS:
                self.line(f"downloading: {megabytes(self.size() - self.start)} so far, {self.finished} of "
                          f"{self.count} done")

    def done(self, target, found):
        self.finished += 1
        pins = list(found)
        listed = ", ".join(map(str, pins[:5])) + (f" and {len(pins) - 5} more" if len(pins) > 5 else "")
        size = sum(path.stat().st_size for path in found.values())
        self.line(f"downloaded {listed} for Python {target}: {megabytes(size)} ({self.finished} of {self.count} "
                  f"done, {megabytes(self.size() - self.start)} so far)")


def megabytes(size):
    return f"{max(size, 0) / 1e6:.1f} MB"


def say(text):
    print(f"==> {text}", flush=True)
