"""One lock for every target Python.

pip-compile resolves only for the interpreter that runs it, and silently drops dependencies whose markers do
not hold there (pytest needs tomli only below 3.11). So `make freeze` runs it once per target, under that
target's own interpreter, and merges the results: a line that holds for every target stays plain, the others
carry a python_version marker. Artifacts are then fetched per target, preferring pure-Python wheels.
"""

import re
import sys

from packaging.version import Version

from tools import lockfile
from tools.pythons import find_python, marker_for
from tools.run import ToolError, run, run_step
from tools.wheels import unfit_reason

MERGE_NOTE = (
    "# Compiled by pip-compile (pip-tools) under each target's own interpreter, then merged:\n"
    "# a line that holds only for some targets carries a python_version marker.\n"
)
COMPILE_FLAGS = ("--quiet", "--generate-hashes", "--allow-unsafe", "--strip-extras", "--no-emit-index-url",
                 "--no-emit-find-links", "--no-emit-trusted-host", "--no-emit-options", "--no-header",
                 "--pip-args", "--isolated")


def running_target():
    return "%d.%d" % sys.version_info[:2]


def index_args(index_url):
    return ["--index-url", index_url] if index_url else []


# ---------------------------------------------------------------- compile


def compile_all(root, targets, staging, env, upgrade, index_url, previous_pins):
    """pip-compile requirements.in under each target; return the merged lock body (without our header).

    previous_pins: {target: [pins the current lock has for it]}, kept unless upgrading.
    """
    results = {}
    for target in targets:
        python = tool_python(root, target, staging, env, index_url)
        results[target] = compile_one(root, python, target, staging, env, upgrade, index_url, previous_pins)
    return merge(results, targets)


def tool_python(root, target, staging, env, index_url):
    """An interpreter of `target` with pip-tools: this one if it is that version, else a throwaway env."""
    if target == running_target():
        return sys.executable
    base = find_python(target, staging / "home")
    if base is None:
        raise ToolError(f"no CPython {target} found (python{target} on PATH or under pyenv): install it or "
                        f"drop {target} from TARGET_PYTHONS.")
    dest = staging / "envs" / target
    fix = f"fix the cause and run `make freeze` again (or drop {target} from TARGET_PYTHONS)."
    run_step([base, "-I", root / "virtualenv.py", "--no-seed", "--no-download", "--no-periodic-update",
              "--no-venv-redirect", "--app-data", staging / "app-data", dest],
             f"creating a Python {target} environment for pip-compile", fix, env=env)
    python = dest / "bin" / "python"
    seed = next((root / "virtualenv_support").glob("pip-*.whl"))
    pip = [python, "-I", seed / "pip", "install", "--isolated", "--quiet", "--only-binary=:all:", "--no-cache-dir"]
    try:  # our own wheelhouse first: no network when the lock already fits this target
        run([*pip, "--no-index", "--find-links", root / "requirements", "pip-tools"], env=env)
    except ToolError:
        run_step([*pip, *index_args(index_url), "pip-tools"], f"installing pip-tools for Python {target}", fix,
                 env=env)
    return python


def compile_one(root, python, target, staging, env, upgrade, index_url, previous_pins):
    """pip-compile for one target, seeded with that target's previous pins so they are kept."""
    output = staging / f"requirements-{target}.txt"
    output.write_text("".join(f"{pin}\n" for pin in previous_pins.get(target, [])), encoding="utf-8")
    argv = [python, "-m", "piptools", "compile", *COMPILE_FLAGS,
            "--cache-dir", root / "build" / "cache" / f"pip-tools-{target}",
            "--output-file", output, *index_args(index_url), "requirements.in"]
    if upgrade:
        argv.append("--upgrade")
    print(f"==> pip-compile for Python {target}", flush=True)
    run_step(argv, f"pip-compile for Python {target}",
             "fix requirements.in (or INDEX_URL) and run `make freeze` again.", cwd=root, env=env)
    return output.read_text(encoding="utf-8")


# ---------------------------------------------------------------- merge


def blocks(text):
    """(requirement line with continuations joined, [its annotation comment lines]) for each requirement."""
    current = None
    for line in text.replace("\\\n", " ").splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            if current:
                yield current
            current = (re.sub(r"\s+", " ", line).strip(), [])
        elif current and line[:1].isspace() and line.strip().startswith("#"):
            current[1].append(line.rstrip())
    if current:
        yield current


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
        python_marker = marker_for(entry["targets"], targets)
        markers = [f"({m})" if " or " in m else m for m in (own_marker, python_marker) if m]
        requirement = str(entry["pin"]) + (f" ; {' and '.join(markers)}" if markers else "")
        hashes = sorted(entry["hashes"])
        out.append(f"{requirement} \\\n" + " \\\n".join(f"    --hash=sha256:{h}" for h in hashes) + "\n")
        out.extend(f"{line}\n" for line in entry["via"])
    return MERGE_NOTE + "".join(out)


# ---------------------------------------------------------------- fetch


def fetch_for_targets(pins, targets, candidates, downloads, env, index_url):
    """{pin: [artifact paths]} so that every target a pin applies to has a fitting artifact.

    `candidates` maps sha256 -> path of artifacts already at hand (requirements/); the rest are downloaded,
    a pure-Python wheel first, the target's binary wheel only where no pure one exists.
    """
    chosen = {pin: [] for pin in pins}
    for target in targets:
        needed = []
        for pin in pins:
            if not pin.applies_to(target):
                continue
            at_hand = [candidates[h] for h in sorted(pin.hashes) if h in candidates]
            fitting = [path for path in at_hand if unfit_reason(path, target) is None]
            if fitting:
                if fitting[0] not in chosen[pin]:
                    chosen[pin].append(fitting[0])
            else:
                needed.append(pin)
        for pin in needed:
            path = download(pin, target, downloads, env, index_url)
            candidates[lockfile.sha256(path)] = path
            chosen[pin].append(path)
    return chosen


def download(pin, target, downloads, env, index_url):
    """Download one artifact of `pin` for `target`: pure-Python if there is one, else the target's wheel."""
    print(f"==> downloading {pin} for Python {target}", flush=True)
    wanted = downloads / f"{pin.name}-{target}.txt"
    wanted.parent.mkdir(parents=True, exist_ok=True)
    wanted.write_text(f"{pin} " + " ".join(f"--hash=sha256:{h}" for h in sorted(pin.hashes)) + "\n")
    dest = downloads / target
    common = [sys.executable, "-m", "pip", "download", "--isolated", "--no-deps", "--only-binary=:all:",
              "--require-hashes", "--python-version", target, "--dest", dest, *index_args(index_url),
              "-r", wanted]
    before = set(dest.glob("*")) if dest.exists() else set()
    try:
        run([*common, "--implementation", "py", "--abi", "none", "--platform", "any"], env=env)
    except ToolError:
        run_step(common, f"pip download of {pin} for Python {target}",
                 "a pin with no wheel (only wheels are supported for now), or the index is unreachable or lost "
                 "a file: fix the cause and run `make freeze` again.", env=env)
    fetched = [path for path in set(dest.glob("*")) - before if lockfile.sha256(path) in pin.hashes]
    if not fetched:
        fetched = [path for path in dest.glob("*") if lockfile.sha256(path) in pin.hashes]
    if not fetched:
        raise ToolError(f"pip download returned no artifact for {pin} matching its hashes.")
    return fetched[0]
