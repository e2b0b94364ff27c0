"""`make adopt DEST=path`: bring the convention into an existing project, or move it to this version there.

First adoption: copy the convention's files (its tools come with their own lock and wheels, so the project's lock
holds only what the project needs), write requirements.in from what the project declares and requirements-dev.in
from its PEP 735 groups and the test tools the convention's `make test` runs, wire the Makefile and .gitignore,
then run the project's first `make freeze` with its old exact pins as constraints (no version jumps). If anything
fails, every file is put back as it was. Adopting again copies only the convention's files, and says what moved.
"""

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from bootstrap_tools import lockfile, toml_file
from bootstrap_tools import requirements_in as requirements_in_module
from bootstrap_tools.run import ToolError, fail

ROOT = Path(__file__).resolve().parent.parent
TOOLS = Path(__file__).resolve().parent.name
# What the convention owns in a project that adopted it; everything else there is the project's.
CONVENTION = ("bootstrap.mk", "bootstrap.py", "bootstrap_build", "virtualenv.py", "virtualenv_support", TOOLS)
BUILD = ".bootstrap"


def convention_targets(root):
    """The convention's target names, as bootstrap.mk's BOOTSTRAP_ALL_TARGETS line lists them (one list, never two
    that drift apart)."""
    match = re.search(r"^BOOTSTRAP_ALL_TARGETS\s*:?=(.*)$", (root / "bootstrap.mk").read_text(encoding="utf-8"),
                      re.MULTILINE)
    return tuple(match.group(1).split()) if match else ()


TARGETS = convention_targets(ROOT)
GITIGNORE = ("/ve", "/.ve-a/", "/.ve-b/", "/.ve.lock", "/.ve.tmp*", "/.ve-?.deleting-*", "/ve.switching", f"/{BUILD}/",
             "__pycache__/")
# Git LFS for the wheelhouse (`make adopt LFS=1`): every artifact and the seed wheels; SHA256SUMS stays plain text.
LFS_ATTRIBUTES = ("requirements/** filter=lfs diff=lfs merge=lfs -text",
                  "virtualenv_support/*.whl filter=lfs diff=lfs merge=lfs -text")
# Variables of the make that runs us; the project's own make must not inherit them (nor DEST).
PARENT_MAKE = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "GNUMAKEFLAGS", "DEST", "PYTHON", "VE", "FORCE",
               "TARGET_PYTHONS", "INDEX_URL", "CONSTRAINTS")


def step(message):
    print(f"==> {message}", flush=True)


def main(argv):
    args = parse_args(argv)
    started = time.monotonic()
    dest = Path(args.dest).resolve()
    stop_on_signals()
    try:
        undo_interrupted(dest)
        check_dest(dest, args.force)
        if args.lfs:
            require_git_lfs(dest)
        version = installed_version(dest)
        if version is None:
            changes = adopt(dest, args)
        else:
            changes = upgrade(dest, version, args.lfs, args.force)
        if args.lfs:
            git_lfs_install(dest)
    except ToolError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail(f"interrupted; {dest} is as it was before `make adopt` (everything it wrote was put back). Run "
             "`make adopt` again.")
    print_changes(dest, changes, version is None, args.lfs)
    if version is None:
        print_path_tools(dest)
    step(f"done in {time.monotonic() - started:.1f} s")
    return 0


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest", help="the project's directory (a git work tree)")
    parser.add_argument("--force", action="store_true", help="adopt even with uncommitted changes in DEST")
    parser.add_argument("--group", action="append", default=[],
                        help="also lock this PEP 735 dependency group of pyproject.toml (repeatable)")
    parser.add_argument("--extra", action="append", default=[],
                        help="also lock this optional-dependencies extra of pyproject.toml (repeatable)")
    parser.add_argument("--test-tools", choices=("auto", "yes", "no"), default="auto",
                        help="add pytest and flake8 for the convention's `make test` (auto: when DEST has no test)")
    parser.add_argument("--index-url", default="", help="package index for the first freeze (default: pip's)")
    parser.add_argument("--targets", default="", help="TARGET_PYTHONS for the first freeze (default: bootstrap.mk's)")
    parser.add_argument("--setting", action="append", default=[], metavar="NAME=VALUE",
                        help="a make variable for the first freeze (TARGET_PYTHONS, TARGET_PLATFORMS, RESOLUTION, "
                             "COOLDOWN_DAYS, INDEX_NAME), as given to `make adopt`")
    parser.add_argument("--accept-changed-hashes", action="store_true",
                        help="accept other bytes for a version DEST's requirements.txt pinned by hash")
    parser.add_argument("--lfs", action="store_true",
                        help="store requirements/ and virtualenv_support/ wheels with Git LFS (needs git-lfs)")
    return parser.parse_args(argv)


# ---------------------------------------------------------------- interruptions

# Written into DEST before adopt changes anything, removed when it ends: what a killed adoption leaves is undone
# by the next `make adopt` (DEST was clean when it started, so its tracked files come back from git).
MARKER = ".bootstrap-adopting.json"


def stop_on_signals():
    """SIGTERM and SIGHUP (a CI cancel, `timeout`, a closed terminal) roll back like Ctrl-C."""
    import signal

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupt)


def write_marker(dest, created, changed, freeze=None):
    import json

    marker = {"created": sorted(created), "changed": sorted(changed), "freeze": freeze}
    (dest / MARKER).write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")


def record_freeze(dest, pgid):
    """The first freeze's process group into the marker (its pid, and what /proc says it is, to know it again)."""
    import json

    marker = json.loads((dest / MARKER).read_text(encoding="utf-8"))
    write_marker(dest, marker["created"], marker["changed"], {"pgid": pgid, "cmdline": cmdline(pgid)})


def cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def undo_interrupted(dest):
    """Undo what an adoption killed half-way left (its marker lists it), so DEST is as it was before it."""
    import json

    path = dest / MARKER
    if not path.is_file() or path.is_symlink():
        return
    try:
        marker = json.loads(path.read_text(encoding="utf-8"))
        created, changed = list(marker["created"]), list(marker["changed"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ToolError(f"{path} is not the marker of an interrupted `make adopt` ({exc}): look at it, delete it and "
                        "run `make adopt` again.") from None
    step(f"undoing an interrupted `make adopt` in {dest} first ({len(created)} paths it created, "
         f"{len(changed)} files it changed)")
    freeze = marker.get("freeze") or {}
    if freeze.get("pgid") and freeze.get("cmdline") and cmdline(freeze["pgid"]) == freeze["cmdline"]:
        stop_group(freeze["pgid"])  # the killed adopt's freeze, still running: it would write into DEST
    remove_created(dest, [name for name in created if name in TOUCHED])  # never a name adopt does not create
    for name in changed:  # one by one: a name git does not track (an ignored file) must not stop the others
        git(dest, "checkout", "--", name)
    path.unlink()


def remove_created(dest, created):
    """Remove what adopt created in DEST: top-level names that did not exist before it (its marker lists them),
    and make ve's leftovers, which carry names only make ve gives."""
    leftovers = [path.name for path in [*dest.glob(".ve.tmp*"), *dest.glob(".ve-?.deleting-*")]]
    for name in [*created, *leftovers]:
        target = dest / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target, ignore_errors=True)
        elif os.path.lexists(target):
            target.unlink()


# ---------------------------------------------------------------- checks


def git(dest, *args):
    result = subprocess.run(["git", "-C", str(dest), *args], capture_output=True, text=True)
    return result.returncode, result.stdout


def check_dest(dest, force):
    if not dest.is_dir():
        raise ToolError(f"DEST={dest} is not a directory: pass the project's directory, `make adopt DEST=path`.")
    if dest == ROOT:
        raise ToolError("DEST is this checkout itself: pass another project's directory.")
    code, top = git(dest, "rev-parse", "--show-toplevel")
    if code != 0 or Path(top.strip()).resolve() != dest:
        raise ToolError(f"{dest} is not the top of a git work tree: adopt needs one, so every change it makes can be "
                        "reviewed and undone (`git init` there first).")
    _, status = git(dest, "status", "--porcelain")
    if status.strip() and not force:
        first = status.splitlines()[0][3:]
        raise ToolError(f"{dest} has uncommitted changes ({first}, ...): commit or stash them first, or pass "
                        "--force (`make adopt DEST=... FORCE=1`).")


def require_git_lfs(dest):
    code, _ = git(dest, "lfs", "version")
    if code != 0:
        raise ToolError("LFS=1 needs Git LFS, and `git lfs version` fails here: install it (Debian and Ubuntu: "
                        "`apt-get install git-lfs`), or adopt without LFS=1 (the wheels then go into git itself).")


def git_lfs_install(dest):
    """Set up Git LFS's filters and hooks in DEST's own git config, so the next `git add` stores the wheels there."""
    code, _ = git(dest, "lfs", "install", "--local")
    if code != 0:
        raise ToolError(f"`git -C {dest} lfs install --local` failed: run it there yourself, then `git add` as below.")


def wire_lfs(write, dest):
    """Add the Git LFS lines for the wheelhouse to DEST's .gitattributes (those it lacks)."""
    path = dest / ".gitattributes"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    present = {" ".join(line.split()) for line in text.splitlines()}
    missing = [line for line in LFS_ATTRIBUTES if line not in present]
    if missing:
        block = "# offline-bootstrap convention: the wheels are stored with Git LFS (make adopt LFS=1)\n" + \
            "\n".join(missing)
        write(".gitattributes", text + ("\n" if text and not text.endswith("\n") else "") + block + "\n")


def installed_version(dest):
    """The version line of DEST's bootstrap.mk if the convention is there already, else None."""
    path = dest / "bootstrap.mk"
    if not path.exists():
        return None
    match = re.search(r"^BOOTSTRAP_MK_VERSION\s*:?=\s*(\S+)", path.read_text(encoding="utf-8", errors="replace"),
                      re.MULTILINE)
    if not match:
        raise ToolError(f"{path} is not the convention's include file (no BOOTSTRAP_MK_VERSION line): it is the "
                        "project's own; rename it and run adopt again.")
    return match.group(1)


def version_of(root):
    return installed_version(root) or "?"


def convention_files(root):
    """{relative path: source path} of everything the convention brings (never tests, bench or docs)."""
    files = {}
    for name in CONVENTION:
        top = root / name
        if top.is_file():
            files[name] = top
        elif top.is_dir():
            for path in sorted(top.rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts:
                    files[path.relative_to(root).as_posix()] = path
    return files


# ---------------------------------------------------------------- first adoption


class Undo:
    """Every file adopt writes in DEST, with its bytes before (None: it did not exist), to put back on failure."""

    def __init__(self, dest):
        self.dest, self.saved = dest, {}

    def remember(self, relative):
        path = self.dest / relative  # an absolute path (git's own files) stays as it is
        if path not in self.saved:
            self.saved[path] = path.read_bytes() if path.is_file() else None

    def write(self, relative, data):
        self.remember(relative)
        path = self.dest / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))

    def rollback(self):
        """Put back every file; one that cannot be put back does not stop the others. Returns what failed."""
        problems = []
        for path, data in self.saved.items():
            try:
                if data is None:
                    path.unlink(missing_ok=True)
                else:
                    path.write_bytes(data)
            except OSError as exc:
                problems.append(f"{path}: {exc.strerror}")
        return problems  # the folders adopt created go with remove_created, which the marker's list drives


def adopt(dest, args):
    refuse_collisions(dest)
    check_makefiles(dest)
    own_targets = makefile_targets(dest)
    wanted, constraints, source, found = declared_requirements(dest, args)
    dev_wanted = found.get("dev", [])
    index_url = chosen_index(args.index_url, found)
    test_tools = args.test_tools == "yes" or (args.test_tools == "auto" and "test" not in own_targets)
    before = snapshot(dest)
    undo = Undo(dest)
    exclude = git_path(dest, "info/exclude")
    if exclude:
        undo.remember(exclude)  # make ve adds the ve's names there
    created = [name for name in TOUCHED if not os.path.lexists(dest / name)]
    write_marker(dest, created, [name for name in TOUCHED if os.path.lexists(dest / name)])
    try:
        step(f"copying the convention (bootstrap.mk version {version_of(ROOT)}) into {dest}")
        for relative, path in convention_files(ROOT).items():
            undo.write(relative, path.read_bytes())
        step(f"writing requirements.in ({f'from {source}' if source else 'empty: DEST declares no requirements'}, "
             f"{len(wanted)} lines)")
        write_requirements_in(undo, dest, wanted, source)
        write_dev_in(undo, dest, wanted, dev_wanted, test_tools)
        step("wiring DEST's Makefile (`include bootstrap.mk`) and .gitignore")
        wire_makefile(undo, dest, own_targets, lock_settings(args))
        wire_gitignore(undo, dest)
        if args.lfs:
            wire_lfs(undo.write, dest)
        if constraints:
            undo.write(f"{BUILD}/adopt-constraints.txt", "".join(f"{line}\n" for line in constraints))
        undo.write(BASELINE, previous_lock(constraints, found["hashes"]))
        undo.remember("requirements.txt")  # DEST's own pins, which the freeze's lock replaces: a failure puts them back
        first_freeze(dest, args, bool(constraints), index_url)
        if not args.accept_changed_hashes and found["hashes"]:
            step(f"checking the first lock against the {len(found['hashes'])} version(s) DEST's requirements.txt "
                 "pinned by hash")
            refuse_changed_bytes(dest, found["hashes"])
    except BaseException:
        clean_ve(dest)
        problems = undo.rollback()
        remove_created(dest, created)  # what the freeze wrote besides (pylock.toml, the provenance record...)
        (dest / MARKER).unlink(missing_ok=True)
        if problems:
            print("".join(f"    could not put back {problem}\n" for problem in problems), end="", file=sys.stderr)
        raise
    (dest / BUILD / "adopt-constraints.txt").unlink(missing_ok=True)
    (dest / BASELINE).unlink(missing_ok=True)
    (dest / MARKER).unlink()
    return describe_changes(before, snapshot(dest), own_targets, source, test_tools)


# The project's exact pins before adoption, in the lock's form, for the first freeze's report to compare with.
BASELINE = f"{BUILD}/adopt-baseline.txt"


def previous_lock(constraints, hashes):
    """The lock text of the pins DEST had (`name==version [; marker]`), with the sha256s it pinned (else a
    placeholder: the report reads names, versions and markers only); empty when it pinned nothing."""
    entries = []
    for line in constraints:
        requirement = Requirement(line)
        version = pinned_version(requirement)
        known = hashes.get((canonicalize_name(requirement.name), version)) or {"0" * 64}
        entries.append(lockfile.lock_entry(line, known))
    return "".join(entries)


def chosen_index(given, found):
    """The index of the first freeze: INDEX_URL, else the one DEST's requirements name. Extra indexes and find-links
    are refused: a package would come from whichever serves it (dependency confusion), and the convention freezes
    from one index."""
    if found["extra"]:
        raise ToolError(f"DEST's requirements name {found['extra'][0]}: the first freeze would take each package from "
                        "whichever index serves it, and a public package of the same name could replace a private "
                        "one. Nothing was changed; remove the line and pass INDEX_URL=<the one index that serves every "
                        "package> (a private index that mirrors the public one).")
    if found["index"] and given and found["index"] != given:
        raise ToolError(f"DEST's requirements name the index {found['index']}, and INDEX_URL names {given}. Nothing "
                        "was changed; pass INDEX_URL naming the index its packages come from, or remove the line.")
    if found["index"] and not given:
        step("the first freeze uses the index DEST's requirements name (its --index-url line)")
    return given or found["index"]


def refuse_changed_bytes(dest, hashes):
    """Trust on first use from DEST's own hashes: a version it pinned by hash must come with those bytes."""
    pins, _ = lockfile.parse((dest / "requirements.txt").read_text(encoding="utf-8"))
    changed = [pin for pin in pins
               if (pin.name, pin.version) in hashes and not pin.hashes <= hashes[pin.name, pin.version]]
    if changed:
        raise ToolError(f"the index serves other bytes for {', '.join(map(str, changed))} than DEST's requirements.txt "
                        "pinned by hash (another index, or a re-upload). Everything adopt wrote was put back; check "
                        "where they come from, or accept them with `make adopt ... ACCEPT_CHANGED_HASHES=1`.")


def git_path(dest, name):
    """Where git keeps `name` of DEST's repository (a worktree or a submodule has a `.git` file, not a folder)."""
    code, out = git(dest, "rev-parse", "--git-path", name)
    return (dest / out.strip()) if code == 0 and out.strip() else None


def check_makefiles(dest):
    """A GNUmakefile or makefile is read instead of Makefile (where adopt adds the include), and .RECIPEPREFIX
    changes what bootstrap.mk's recipes mean: named, never worked around."""
    for name in ("GNUmakefile", "makefile"):
        if (dest / name).is_file() and name in os.listdir(dest):
            raise ToolError(f"{dest} has a `{name}`, which make reads instead of Makefile, so the `include "
                            "bootstrap.mk` adopt adds to Makefile would never be read. Nothing was changed; rename it "
                            "to Makefile and run `make adopt` again.")
    if re.search(r"^\.RECIPEPREFIX :?= *\S", make_database(dest), re.MULTILINE):
        raise ToolError(f"{dest}'s Makefile sets .RECIPEPREFIX, which would change how bootstrap.mk's recipes are "
                        "read. Nothing was changed; set it back after your own rules (`.RECIPEPREFIX :=` before the "
                        "include), then run `make adopt` again.")


# Names the first adoption creates (besides CONVENTION): found in DEST already, they are the project's own.
CREATED = ("requirements", BUILD, "requirements.pins", "pylock.toml", "requirements-provenance.json",
           "requirements-dev.txt",
           "requirements-build.txt", "requirements-built.json", "ve", ".ve-a", ".ve-b")
# Files adopt edits in place: never through a symlink (a shared Makefile.common would change for every project).
EDITED = ("Makefile", ".gitignore", ".gitattributes", "requirements.in", "requirements.txt", "requirements-dev.in")
# Every top-level name an adoption may create or change (its marker lists those of them it found absent).
TOUCHED = (*CONVENTION, *CREATED, *EDITED, ".ve.lock", ".ve.tmp", "__pycache__")


def refuse_collisions(dest):
    """The project's own files where the convention's go: say which, never overwrite, prune or delete them."""
    taken = []
    for name in CONVENTION + CREATED:
        path = dest / name
        if not os.path.lexists(path):
            continue
        if name == "requirements" and path.is_dir() and not path.is_symlink():
            names = sorted(entry.name for entry in path.iterdir())
            wheels = [name for name in names if name.endswith((".whl", ".tar.gz", ".zip"))]
            shown = [name for name in names if name not in wheels][:3] or [f"{len(wheels)} wheel(s)"]
            taken.append(f"requirements/ ({', '.join(shown)}{', ...' if len(names) > len(shown) else ''})")
        else:
            taken.append(f"{name}{' (a symlink)' if path.is_symlink() else '/' if path.is_dir() else ''}")
    linked = [name for name in EDITED if (dest / name).is_symlink()]
    if linked:
        taken.append(", ".join(f"{name} (a symlink: adopt edits it, and would edit what it points at)"
                               for name in linked))
    if taken:
        raise ToolError(f"{dest} has files of its own where the convention puts its files: {', '.join(taken)}. "
                        "Nothing was changed; move them (requirement files can go to requirements.in or a "
                        "folder of another name; a symlinked file can be replaced by a copy) and run `make adopt` "
                        "again.")


def declared_requirements(dest, args):
    """(requirement lines for requirements.in, constraint lines for the first freeze, where they came from, what
    DEST's requirement files say besides: {"index": its --index-url, "extra": extra indexes and find-links,
    "hashes": {(name, version): sha256s it pinned}})."""
    requirements_in = dest / "requirements.in"
    requirements_txt = dest / "requirements.txt"
    pyproject = dest / "pyproject.toml"
    found = {"index": "", "extra": [], "hashes": {}}
    if requirements_in.exists():
        _, problems = requirements_in_module.read(requirements_in)
        if problems:
            raise ToolError(f"DEST's {problems[0]}{f' ({len(problems) - 1} more)' if len(problems) > 1 else ''}. "
                            "Nothing was changed; fix requirements.in and run `make adopt` again.")
        lines = lockfile.requirement_lines(requirements_in.read_text(encoding="utf-8-sig"))
        constraints = exact_pins(requirements_txt) if requirements_txt.exists() else []
        return lines, constraints, "requirements.in", found
    if requirements_txt.exists():
        lines, constraints = [], []
        for line, hashes in included_requirements(requirements_txt, dest, found):
            requirement = parse_requirement(line, "requirements.txt")
            pinned = pinned_version(requirement)
            if pinned:
                constraints.append(f"{requirement.name}=={pinned}"
                                   + (f" ; {requirement.marker}" if requirement.marker else ""))
                requirement.specifier = type(requirement.specifier)("")
                if hashes:
                    found["hashes"][canonicalize_name(requirement.name), pinned] = set(hashes)
            lines.append(str(requirement))
        return lines, constraints, "requirements.txt", found
    if pyproject.exists():
        lines, found["dev"] = pyproject_requirements(pyproject, args.group, args.extra)
        return lines, [], "pyproject.toml", found
    if args.group or args.extra:
        raise ToolError(f"--group/--extra name pyproject.toml, and {dest} has none.")
    return [], [], None, found


OPTION = re.compile(r"(-[a-zA-Z]|--[a-z-]+)(?:=|\s*)(.*)")
INCLUDE, INDEX, EXTRA = ("-r", "--requirement"), ("-i", "--index-url"), ("--extra-index-url", "-f", "--find-links")


def included_requirements(path, dest, found, seen=None):
    """[(requirement, [sha256s])] of a requirements file, following `-r` includes in every form pip accepts
    (`-r x`, `-rx`, `--requirement=x`); index lines go into `found`; other options are left out, with a line."""
    seen = seen or set()
    if path.resolve() in seen:
        return []
    seen.add(path.resolve())
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ToolError(f"{path.relative_to(dest) if path.is_relative_to(dest) else path} cannot be read "
                        f"({exc.strerror}), and DEST's requirements include it. Nothing was changed.") from None
    lines = []
    for line in lockfile.requirement_lines(text):
        if line.startswith("-"):
            option, value = OPTION.match(line).groups() if OPTION.match(line) else (line, "")
            value = shlex.split(value)[0] if value.strip() else ""
            if option in INCLUDE and value:
                lines += included_requirements(path.parent / value, dest, found, seen)
            elif option in INDEX and value:
                found["index"] = value
            elif option in EXTRA:
                found["extra"].append(f"`{line}`")
            else:
                print(f"    left out of requirements.in: `{line}` ({path.relative_to(dest)}): the convention installs "
                      "pinned dependencies from requirements/ only", flush=True)
            continue
        split = re.search(r"\s--hash", line)
        hashes = [value.lower() for value in re.findall(r"--hash[=\s]+sha256:([0-9a-fA-F]{64})", line)]
        lines.append((line[:split.start()].strip() if split else line, hashes))
    return lines


def parse_requirement(line, source):
    try:
        requirement = Requirement(line)
    except InvalidRequirement as exc:
        raise ToolError(f"{source} line `{line}` is not a requirement ({exc}): fix it and run adopt again.") from None
    if requirement.url:
        raise ToolError(f"{source} line `{line}` is a URL requirement, which the convention does not lock: replace it "
                        "by a release from the index and run adopt again.")
    return requirement


def pinned_version(requirement):
    specifiers = list(requirement.specifier)
    if len(specifiers) == 1 and specifiers[0].operator in ("==", "===") and "*" not in specifiers[0].version:
        return specifiers[0].version
    return None


def exact_pins(path):
    """`name==version [; marker]` of every exact pin in an existing requirements.txt (a lock with hashes, or not)."""
    pins = []
    for line in lockfile.requirement_lines(path.read_text(encoding="utf-8")):
        line = line.split(" --hash", 1)[0].strip()
        if line.startswith("-"):
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        version = pinned_version(requirement)
        if version and not requirement.url:
            pins.append(f"{requirement.name}=={version}" + (f" ; {requirement.marker}" if requirement.marker else ""))
    return pins


def pyproject_requirements(path, groups, extras):
    data = toml_file.load(path, str(path), ": fix it and run adopt again.")
    project = data.get("project", {})
    if "dependencies" in project.get("dynamic", []):
        raise ToolError(f"{path} declares its dependencies as dynamic (computed by the build backend), which adopt "
                        "cannot read. Nothing was changed; write them into requirements.in (one a line) and run "
                        "`make adopt` again.")
    if not project.get("dependencies") and data.get("tool", {}).get("poetry", {}).get("dependencies"):
        raise ToolError(f"{path} keeps its dependencies in [tool.poetry.dependencies], which adopt does not read. "
                        "Nothing was changed; write them into requirements.in as PEP 508 lines (`name>=1.2`), then "
                        "run `make adopt` again.")
    lines = list(project.get("dependencies", []))
    declared_groups = data.get("dependency-groups", {})
    dev = []  # the groups asked for are the dev set (requirements-dev.in), never the runtime
    for group in groups:
        dev += [line for line in group_requirements(declared_groups, group, path) if line not in dev]
    declared_extras = data.get("project", {}).get("optional-dependencies", {})
    for extra in extras:
        if extra not in declared_extras:
            raise ToolError(f"{path} has no optional-dependencies extra `{extra}` "
                            f"(it has: {', '.join(sorted(declared_extras)) or 'none'}).")
        lines += declared_extras[extra]
    for line in lines + dev:
        parse_requirement(line, "pyproject.toml")
    return lines, dev


def group_requirements(declared, group, path, seen=()):
    """A PEP 735 group's requirements, with `{include-group = ...}` entries expanded."""
    normalized = {canonicalize_name(name): name for name in declared}
    name = normalized.get(canonicalize_name(group))
    if name is None:
        raise ToolError(f"{path} has no dependency group `{group}` (it has: {', '.join(sorted(declared)) or 'none'}).")
    if name in seen:
        raise ToolError(f"{path}: dependency group `{group}` includes itself.")
    lines = []
    for entry in declared[name]:
        if isinstance(entry, dict) and "include-group" in entry:
            lines += group_requirements(declared, entry["include-group"], path, (*seen, name))
        elif isinstance(entry, str):
            lines.append(entry)
    return lines


# What adopt writes above the lines it adds to the dev set: the record an upgrade reads to know they were ours.
ADDED_BY_ADOPT = "# what the convention's make test runs (added by `make adopt`)"
# Those an older adoption added to requirements.in itself, before the tools had a lock of their own.
OLD_ADDED_BY_ADOPT = "# what the convention's make freeze and make test run (added by `make adopt`)"
OLD_HEADER_END = "# requirements.txt and requirements/. pip-tools is what `make freeze` itself runs."
TEST_TOOLS = ("pytest", "flake8")


def missing_test_tools(lines, test_tools):
    """What the convention's `make test` runs (pytest, flake8) and `lines` lack; none when the project tests itself."""
    names = {canonicalize_name(Requirement(line).name) for line in lines}
    return [name for name in TEST_TOOLS if test_tools and name not in names]


def write_requirements_in(undo, dest, lines, source):
    """A new requirements.in from what DEST declares (the runtime set); an existing one is kept byte for byte. The
    convention's own tools are never added: they have a lock of their own (bootstrap_tools/tools.txt)."""
    if source == "requirements.in":
        return
    origin = f"from {source} " if source else ""
    header = (f"# What this project runs ({origin}by `make adopt`): the runtime set. Edit it, then `make freeze` "
              "locks it\n# into requirements.txt and requirements/; dev tools go into requirements-dev.in.\n")
    undo.write("requirements.in", header + "".join(f"{line}\n" for line in lines))


def write_dev_in(undo, dest, runtime, groups, test_tools):
    """requirements-dev.in, the dev set: the PEP 735 groups asked for (--group) and the test tools the convention's
    `make test` runs, under a line that records that adopt added them. An existing one gets only what it lacks."""
    path = dest / "requirements-dev.in"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    have = lockfile.requirement_lines(text)
    tools = missing_test_tools(runtime + groups + have, test_tools)
    lines = [line for line in groups if line not in have]
    if not lines and not tools:
        return
    if not text:
        text = ("# What this project's development needs (by `make adopt`): the dev set. `make freeze` locks it into\n"
                "# requirements-dev.txt with requirements.txt's pins held; `make ve GROUPS=runtime` leaves it out.\n")
    text += "".join(f"{line}\n" for line in lines)
    if tools:
        text += ADDED_BY_ADOPT + "\n" + "".join(f"{name}\n" for name in tools)
    undo.write("requirements-dev.in", text)


def drop_convention_tools(dest):
    """An upgrade from before the tools had their own lock: take out of requirements.in what an older adoption
    added there (pip-tools; pytest and flake8 move to requirements-dev.in), never a line the project wrote.
    Returns the names taken out of requirements.in."""
    path = dest / "requirements.in"
    if not path.is_file() or path.is_symlink():
        return []
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    stripped = [line.strip() for line in lines]
    if OLD_ADDED_BY_ADOPT in stripped:  # everything below that line is what adopt added
        start = stripped.index(OLD_ADDED_BY_ADOPT)
        added = [line for line in stripped[start + 1:] if line and not line.startswith("#")]
        kept = lines[:start] + [line for line in lines[start + 1:]
                                if line.strip() and line.strip() not in ("pip-tools", *TEST_TOOLS)]
    elif OLD_HEADER_END in stripped:  # a requirements.in adopt wrote: it appended the tools it lacked at the end
        tail = []
        for candidate in (["pip-tools", *TEST_TOOLS], ["pip-tools"]):
            if stripped[-len(candidate):] == candidate:
                tail = candidate
                break
        if not tail:
            return []
        added = tail
        kept = lines[:len(lines) - len(tail)]
        index = stripped.index(OLD_HEADER_END)
        kept[index] = "# requirements.txt and requirements/; dev tools go into requirements-dev.in.\n"
    else:
        return []
    if not added:
        return []
    path.write_text("".join(kept), encoding="utf-8")
    moved = [name for name in added if name in TEST_TOOLS]
    if moved:
        dev = dest / "requirements-dev.in"
        text = dev.read_text(encoding="utf-8") if dev.exists() else ""
        have = {canonicalize_name(Requirement(line).name) for line in lockfile.requirement_lines(text)}
        missing = [name for name in moved if name not in have]
        if missing:
            dev.write_text(text + ("" if not text or text.endswith("\n") else "\n") + ADDED_BY_ADOPT + "\n"
                           + "".join(f"{name}\n" for name in missing), encoding="utf-8")
    return added


def make_database(dest):
    """What make itself reads from DEST's Makefile and everything it includes (`make -pq`, no recipe runs), or ""."""
    if not (dest / "Makefile").is_file():
        return ""
    result = subprocess.run(["make", "-C", str(dest), "--no-print-directory", "-pqrR", "-f", "Makefile",
                             ".BOOTSTRAP-ADOPT-PROBE"], env=project_env(), stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, errors="replace")
    return result.stdout


def makefile_targets(dest):
    """The targets DEST's make knows (its Makefile and the files it includes), so the convention's step aside."""
    targets, skip = set(), False
    for line in make_database(dest).splitlines():
        if line.startswith("# Not a target"):
            skip = True
            continue
        match = re.match(r"^([A-Za-z0-9_][^\s:=#]*(?: [^\s:=#]+)*)::?(?:\s|$)", line)
        if match and not skip:
            targets.update(match.group(1).split())
        skip = False
    return targets - {".BOOTSTRAP-ADOPT-PROBE"}


# The settings that shape the lock: given to `make adopt`, they are written into DEST's Makefile, so that every
# later `make freeze` and `make check` there uses them too (never INDEX_URL: it may hold credentials).
LOCK_SETTINGS = ("TARGET_PYTHONS", "TARGET_PLATFORMS", "RESOLUTION", "GLIBC_FLOOR")


def lock_settings(args):
    settings = dict(setting.split("=", 1) for setting in args.setting if "=" in setting)
    if args.targets:
        settings.setdefault("TARGET_PYTHONS", args.targets)
    return {name: settings[name] for name in LOCK_SETTINGS if name in settings}


def makefile_block(own_targets, settings):
    """What adopt appends to DEST's Makefile: the settings given to it, the names DEST keeps for its own targets
    (every other convention target, one a later bootstrap.mk adds included, gets its short name), the include."""
    kept = [name for name in TARGETS if name in own_targets]
    note = (f"# This project has its own {', '.join(kept)}: the convention's run as "
            f"{', '.join('make bootstrap-' + name for name in kept)}.\n" if kept else "")
    if "test" in kept:  # adopt adds pytest and flake8 only for a project the convention tests
        note += ("# make bootstrap-test runs flake8 and pytest from the dev set: add them to requirements-dev.in "
                 "first.\n")
    return ("# The offline-bootstrap convention (bootstrap.mk, brought by `make adopt`; `make help` lists it).\n"
            + note + "".join(f"{name} := {value}\n" for name, value in settings.items())
            + (f"BOOTSTRAP_PROJECT_TARGETS := {' '.join(kept)}\n" if kept else "") + "include bootstrap.mk\n")


def wire_makefile(undo, dest, own_targets, settings):
    block = makefile_block(own_targets, settings)
    path = dest / "Makefile"
    if path.exists():
        text = path.read_text(encoding="utf-8")
        undo.write("Makefile", text + ("" if text.endswith("\n") else "\n") + "\n" + block)
    else:
        undo.write("Makefile", "# This project's Makefile; `make` alone lists the targets.\n" + block)


# What a project that adopted the convention commits, as paths git's ignore rules are checked against.
COMMITTED = ("bootstrap.py", "bootstrap.mk", "virtualenv.py", f"{TOOLS}/check.py", "virtualenv_support/SHA256SUMS",
             "virtualenv_support/pip-1.0-py3-none-any.whl", "requirements.txt", "requirements.in", "requirements.pins",
             "requirements/any-1.0-py3-none-any.whl", "requirements/any-1.0.tar.gz", "requirements/any-1.0.zip",
             "pylock.toml", "requirements-provenance.json", "requirements-dev.in", "requirements-dev.txt",
             f"{TOOLS}/wheels/pip-1.0-py3-none-any.whl")
# Appended when DEST's own rules (a `*.whl` line) would keep a committed file out of git.
UNIGNORE = ("!/requirements/", "!/requirements/**", "!/virtualenv_support/", "!/virtualenv_support/**",
            "!/bootstrap_tools/", "!/bootstrap_tools/**", "!/virtualenv.py", "!/bootstrap.py", "!/bootstrap.mk",
            "!/pylock.toml", "!/requirements*.txt", "!/requirements.in", "!/requirements-dev.in", "!/requirements.pins",
            "!/requirements-provenance.json")


def wire_gitignore(undo, dest):
    path = dest / ".gitignore"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    present = {line.strip() for line in text.splitlines()}
    missing = [line for line in GITIGNORE if line not in present]
    if missing:
        block = "# offline-bootstrap convention: the ve, its build slots and build leftovers\n" + "\n".join(missing)
        text = text + ("\n" if text and not text.endswith("\n") else "") + block + "\n"
        undo.write(".gitignore", text)
    if ignored(dest):
        block = ("# offline-bootstrap convention: what it commits, whatever the rules above ignore\n"
                 + "\n".join(UNIGNORE))
        undo.write(".gitignore", text + block + "\n")
        still = ignored(dest)
        if still:
            raise ToolError(f"DEST's git ignore rules keep {still[0]} out of git (a rule outside .gitignore, in "
                            "`.git/info/exclude` or a global excludes file?), so a clone could not build. Fix the rule "
                            "(`git check-ignore -v <path>` names it) and run `make adopt` again.")


def ignored(dest):
    """Which of the paths the convention commits DEST's ignore rules would keep out of git."""
    result = subprocess.run(["git", "-C", str(dest), "check-ignore", "--no-index", "--stdin"],
                            input="\n".join(COMMITTED), capture_output=True, text=True)
    return result.stdout.split()


def project_env():
    return {key: value for key, value in os.environ.items() if key not in PARENT_MAKE}


def first_freeze(dest, args, constrained, index_url):
    """The convention's own freeze (`bootstrap-freeze`: whatever DEST's own `freeze` target does, it is not this),
    with the settings given to `make adopt`."""
    step(f"first `make freeze` in {dest} (the index is needed this once)")
    argv = ["make", "--no-print-directory", "-C", str(dest), "-f", "Makefile", "bootstrap-freeze"]
    settings = dict(setting.split("=", 1) for setting in args.setting if "=" in setting)
    if args.targets:
        settings.setdefault("TARGET_PYTHONS", args.targets)
    if constrained:
        # The project's own exact pins hold as they are: a cooling-off would turn a recent one into a version jump.
        settings["CONSTRAINTS"] = f"{BUILD}/adopt-constraints.txt"
        settings.setdefault("COOLDOWN_DAYS", "0")
    if index_url:
        settings["INDEX_URL"] = index_url
    if args.accept_changed_hashes:
        settings["ACCEPT_CHANGED_HASHES"] = "1"
    settings["REPORT_BASELINE"] = BASELINE
    argv += [f"{name}={value}" for name, value in sorted(settings.items())]
    # A process group of its own, so that an interrupted adopt stops all of the freeze (what pip runs included)
    # before it puts DEST back; the marker names the group, so that a `kill -9` of adopt is followed by the next
    # adopt stopping what is left of it before undoing.
    process = subprocess.Popen(argv, env=project_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    record_freeze(dest, process.pid)
    output = []
    try:
        for line in process.stdout:  # progress as it comes; the report's pins once it is done
            output.append(line.rstrip("\n"))
            if line.startswith("==> "):
                print(f"    {line}", end="", flush=True)
    except BaseException:
        stop_group(process.pid)
        raise
    if process.wait() != 0:
        print("".join(f"    {line}\n" for line in output if not line.startswith("==> ")), end="", file=sys.stderr)
        errors = [line[len("ERROR:"):].strip() for line in output if line.startswith("ERROR:")]
        cause = errors[-1] if errors else f"exit {process.returncode}"
        raise ToolError(f"the first `make freeze` in {dest} failed: {cause} Everything adopt wrote there was put "
                        f"back; fix the cause and run `make adopt` again.")
    print_pin_changes(output)


def print_pin_changes(output, limit=30):
    """The first freeze's report of the pins (against DEST's own before adoption: REPORT_BASELINE), at most `limit`
    lines; the whole report stays in .bootstrap/freeze-report.txt."""
    heading = "Pins (requirements.txt):"
    if heading not in output:
        return
    lines = []
    for line in output[output.index(heading) + 1:]:
        if not line.startswith("  "):
            break
        lines.append(line)
    print(f"    {heading[:-1]}, against DEST's pins before adoption:")
    print("".join(f"    {line}\n" for line in lines[:limit]), end="")
    if len(lines) > limit:
        print(f"      ... {len(lines) - limit} more in {BUILD}/freeze-report.txt")


def stop_group(pgid):
    """SIGTERM to the freeze's whole process group (make, pip-compile, pip, what they run), SIGKILL to what is left
    after 20 s; return once none of them is left, so nothing of the freeze writes into DEST afterwards."""
    import signal

    for signum in (signal.SIGTERM, signal.SIGKILL):
        deadline = time.monotonic() + 20
        try:
            os.killpg(pgid, signum)
        except ProcessLookupError:
            return
        while time.monotonic() < deadline:
            try:
                os.waitpid(pgid, os.WNOHANG)  # the leader, our child when we started it
            except ChildProcessError:
                pass
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)


def clean_ve(dest):
    if (dest / "bootstrap.py").exists():
        subprocess.run([sys.executable, "-I", "-S", str(dest / "bootstrap.py"), "--ve", str(dest / "ve"), "--clean"],
                       env=project_env(), stdin=subprocess.DEVNULL, capture_output=True)


# ---------------------------------------------------------------- upgrade


# What the project's own `make freeze-upgrade` moves forward (the seed, virtualenv.py and what it is built from): an
# upgrade never touches them, so it can never take them back to this checkout's versions.
STATE = ("virtualenv.py", "virtualenv_support", f"{TOOLS}/virtualenv.txt", f"{TOOLS}/virtualenv.in")


def upgrade(dest, version, lfs=False, force=False):
    """Copy this version's convention files over DEST's where DEST has a version the convention shipped; touch
    nothing else (but .gitattributes with LFS=1). A file edited by hand is kept and named (FORCE=1: replaced, kept
    beside as `<name>.edited`); a file the convention never shipped is the project's, never deleted."""
    step(f"upgrading the convention in {dest}: bootstrap.mk version {version} -> {version_of(ROOT)}")
    before = snapshot(dest)
    if lfs:
        wire_lfs(lambda relative, text: (dest / relative).write_text(text, encoding="utf-8"), dest)
    ours = {relative: path for relative, path in convention_files(ROOT).items() if not is_state(relative)}
    theirs = {relative: path for relative, path in convention_files(dest).items() if not is_state(relative)}
    linked = [relative for relative in sorted(set(ours) | set(theirs)) if any(
        (dest / part).is_symlink() for part in parents_and_self(relative))]
    if linked:
        raise ToolError(f"{dest} reaches convention files through a symlink ({', '.join(linked[:3])}): an upgrade "
                        "would write what the link points at. Nothing was changed; replace the link by the files "
                        "and run `make adopt` again.")
    shipped = shipped_blobs(ROOT)
    kept = []
    for relative, path in ours.items():
        target = dest / relative
        if target.exists() and target.read_bytes() == path.read_bytes():
            continue
        if target.exists() and git_blob(target.read_bytes()) not in shipped.get(relative, ()):
            if not force:
                kept.append(relative)
                continue
            shutil.copyfile(target, target.with_name(target.name + ".edited"))
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.part")
        shutil.copyfile(path, partial)
        os.replace(partial, target)
    for relative in sorted(set(theirs) - set(ours)):
        if git_blob((dest / relative).read_bytes()) in shipped.get(relative, ()):
            (dest / relative).unlink()  # a convention file this version no longer ships, unedited
    dropped = drop_convention_tools(dest)
    if dropped:
        step(f"requirements.in: {', '.join(dropped)} taken out (what an older `make adopt` added there; the "
             "convention's tools now have their own lock, bootstrap_tools/tools.txt"
             + (", and pytest and flake8 moved to requirements-dev.in, the dev set" if set(dropped) & set(TEST_TOOLS)
                else "") + "): run `make freeze` there to drop them from requirements.txt")
    for relative in kept:
        print(f"    kept {relative}: edited by hand (its bytes are no version the convention shipped); compare it "
              f"with {ROOT / relative}, or `make adopt DEST=... FORCE=1` replaces it (yours kept as "
              f"{relative}.edited)", flush=True)
    return describe_changes(before, snapshot(dest), set(), None, None)


def is_state(relative):
    return any(relative == name or relative.startswith(name + "/") for name in STATE)


def parents_and_self(relative):
    parts = relative.split("/")
    return ["/".join(parts[:end]) for end in range(1, len(parts) + 1)]


def git_blob(data):
    """The id git gives these bytes (`git hash-object`), to compare with every version in the history."""
    import hashlib

    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def shipped_blobs(root):
    """{relative path: git blob ids}: every version of each convention file this checkout's history holds, and the
    one in its work tree. Without a git history, only the work tree's (an unknown version is then 'edited')."""
    blobs = {}
    for relative, path in convention_files(root).items():
        blobs.setdefault(relative, set()).add(git_blob(path.read_bytes()))
    code, log = git(root, "log", "-m", "--all", "--format=", "--raw", "--no-abbrev", "--no-renames", "--",
                    *[name for name in CONVENTION])
    if code == 0:
        for line in log.splitlines():
            fields = line.split("\t")
            if len(fields) == 2 and line.startswith(":"):
                meta = fields[0].split()
                if len(meta) >= 4 and set(meta[3]) != {"0"}:
                    blobs.setdefault(fields[1], set()).add(meta[3])
    return blobs


# ---------------------------------------------------------------- report


def snapshot(dest):
    """{relative path: bytes digest} of DEST's files, without .git, the ve, its slots and the build area."""
    skip = {".git", "ve", ".ve-a", ".ve-b", ".ve.lock", ".ve.tmp", "ve.switching", BUILD}
    files = {}
    for directory, dirnames, filenames in os.walk(dest):
        relative_dir = Path(directory).relative_to(dest)
        dirnames[:] = sorted(name for name in dirnames
                             if name != "__pycache__" and not (relative_dir == Path(".") and name in skip))
        for name in filenames:
            relative = (relative_dir / name).as_posix()
            if relative_dir == Path(".") and name in skip:
                continue
            files[relative] = lockfile.sha256(Path(directory) / name)
    return files


def describe_changes(before, after, own_targets, source, test_tools):
    why = {
        "Makefile": "`include bootstrap.mk` added" + (
            f"; your own {', '.join(sorted(own_targets & set(TARGETS)))} kept (the convention's: make bootstrap-...)"
            if own_targets & set(TARGETS) else ""),
        ".gitignore": "the ve, its slots and .bootstrap/ ignored",
        ".gitattributes": "requirements/ and virtualenv_support/ wheels stored with Git LFS",
        "requirements.in": (f"from {source}" if source else "new") + " (the runtime set)" if test_tools is not None
        else "what an older adoption added taken out (the convention's tools have their own lock): run `make freeze`",
        "requirements-dev.in": "the dev set" + (": pytest and flake8 for make test" if test_tools else "")
        if test_tools is not None else "pytest and flake8, moved from requirements.in",
        "requirements-dev.txt": "the dev set's hashed lock (requirements.txt's pins held)",
        "requirements.txt": "now the hashed lock; your exact pins were the first freeze's constraints"
                            if source == "requirements.txt" else "the hashed lock",
        "requirements.pins": "the lock without hashes, one pin a line, for review",
        "requirements": "every artifact the lock pins",
        "pylock.toml": "the lock in PEP 751's standard format (relative paths into requirements/)",
        "requirements-provenance.json": "where and when each artifact came from (index, upload time, fetch date)",
    }
    changes = []
    for path in sorted(before.keys() | after.keys()):
        if before.get(path) == after.get(path):
            continue
        mark = "+" if path not in before else "-" if path not in after else "~"
        top = path.split("/", 1)[0]
        changes.append((mark, path, why.get(path) or why.get(top) or ("the convention's" if top in CONVENTION else "")))
    return changes


def print_changes(dest, changes, first, lfs=False):
    if not changes:
        print(f"No file changed: {dest} already has this version of the convention.")
        return
    print(f"Changed in {dest} ({len(changes)} files):")
    grouped = {}
    for mark, path, why in changes:
        top = path.split("/", 1)[0]
        if "/" in path and top in ("requirements", "virtualenv_support", TOOLS):
            grouped.setdefault((top, mark, why), []).append(path)
        else:
            print(f"  {mark} {path}" + (f": {why}" if why else ""))
    for (top, mark, why), paths in sorted(grouped.items()):
        print(f"  {mark} {top}/ ({len(paths)} files)" + (f": {why}" if why else ""))
    paths = sorted({path.split("/", 1)[0] for _, path, _ in changes})
    print("Next steps:")
    print(f"  cd {shlex.quote(str(dest))}")
    if lfs and not first:
        print("  git add --renormalize requirements virtualenv_support   # wheels already in git move to LFS "
              "from the next commit on")
    print(f"  git add {' '.join(map(shlex.quote, paths))}")
    print("  git commit -m " + shlex.quote("Adopt the offline-bootstrap convention" if first
                                           else "Upgrade the offline-bootstrap convention"))
    print("  make ve      # offline from here on")
    print("  make check   # or `make test` when the convention runs your tests")
    if lfs:
        print("Git LFS: every machine that clones needs it once (`apt-get install git-lfs`, then `git lfs install`); "
              "a clone made without it gets pointer files, and `make ve` says to run `git lfs pull`.")
    elif first:
        print("A large wheelhouse? `make adopt DEST=... LFS=1` stores requirements/ and virtualenv_support/ wheels "
              "with Git LFS (README: Git LFS for the wheelhouse).")


# ---------------------------------------------------------------- the project's recipes

PYTHON_COMMAND = re.compile(r"python(3(\.\d+)?)?$")
PIP_COMMAND = re.compile(r"pip(3(\.\d+)?)?$")
# What separates the commands of a recipe line; the words that run the command after them.
COMMAND_SEPARATORS = re.compile(r"&&|\|\||[;|()`]")
COMMAND_PREFIXES = ("exec", "env", "time", "nohup", "command")
RULE = re.compile(r"^([^\s:=#][^:=#]*?)\s*::?(?!=)")


def console_scripts(directory):
    """{script: ve form} for every console script of the wheels in `directory` (DEST's requirements/): `$(VE_RUN)
    <name>` where the wheel has a package of the script's name with a `__main__` (pytest, flake8, celery), or the
    entry point is a `__main__` module, else "$(VE)/bin/<script>" (its first line names the ve's Python)."""
    import configparser
    import zipfile

    scripts = {}
    for wheel in sorted(directory.glob("*.whl")):
        try:
            with zipfile.ZipFile(wheel) as archive:
                names = set(archive.namelist())
                entry_points = [name for name in names if name.count("/") == 1
                                and name.endswith(".dist-info/entry_points.txt")]
                text = archive.read(entry_points[0]).decode("utf-8") if entry_points else ""
        except (OSError, zipfile.BadZipFile, UnicodeDecodeError):
            continue  # make check names a damaged artifact; here it only means no suggestion
        parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
        parser.optionxform = str
        try:
            parser.read_string(text)
        except configparser.Error:
            continue
        for script, target in (parser["console_scripts"].items() if parser.has_section("console_scripts") else ()):
            module, own = target.split(":", 1)[0].strip(), script.replace("-", "_")
            package = own if f"{own}/__main__.py" in names else module.removesuffix(".__main__") \
                if module.endswith(".__main__") else None
            scripts[script] = f"$(VE_RUN) {package}" if package else f'"$(VE)/bin/{script}"'
    return scripts


def path_tools(makefile_text, scripts):
    """[(line number, target, command, its ve form or None for pip)] for each command of a recipe that runs
    python, pip or one of `scripts` (the lock's console scripts) found on PATH."""
    found, target, lines, index = [], None, makefile_text.splitlines(), 0
    while index < len(lines):
        number, line = index + 1, lines[index]
        while line.endswith("\\") and index + 1 < len(lines):
            index += 1
            line = line[:-1] + " " + lines[index].strip()
        index += 1
        if line.startswith("\t"):
            if target:
                found += [(number, target, command, form) for command, form in recipe_commands(line, scripts)]
        elif RULE.match(line):
            target = RULE.match(line).group(1).strip()
        elif line.strip() and not line.lstrip().startswith("#"):
            target = None  # a variable or a directive ends the rule: a tab line after it is no recipe of it
    return found


def recipe_commands(line, scripts):
    """[(command, ve form or None)] of the commands in one recipe line that run a tool from PATH."""
    found = []
    for part in COMMAND_SEPARATORS.split(line.strip().lstrip("@-+ ")):
        words = part.split()
        while words and ("=" in words[0] and not words[0].startswith("-") or words[0] in COMMAND_PREFIXES):
            words.pop(0)
        if not words:
            continue
        command, word = " ".join(words), words[0]
        if PIP_COMMAND.match(word) or (PYTHON_COMMAND.match(word) and words[1:3] == ["-m", "pip"]):
            found.append((command, None))
        elif PYTHON_COMMAND.match(word):
            found.append((command, " ".join(["$(VE_PYTHON)", *words[1:]])))
        elif word in scripts:
            found.append((command, " ".join([scripts[word], *words[1:]])))
    return found


def print_path_tools(dest):
    """Name the recipes of DEST's Makefile that run python, pip or a tool of the lock from PATH, where the lock's
    packages are not, and how each reads in the ve (bootstrap.mk's VE_RUN and VE_PYTHON)."""
    makefile = dest / "Makefile"
    if not makefile.is_file():
        return
    found = path_tools(makefile.read_text(encoding="utf-8", errors="replace"), console_scripts(dest / "requirements"))
    if not found:
        return
    print("Your Makefile's recipes run these from PATH, where the lock's packages are not; in the ve they read "
          "(put `ve` first among the target's prerequisites; docs/adopt.md):")
    for number, target, command, form in found:
        print(f"  Makefile:{number} ({target}): `{command}` -> "
              + (f"`{form}`" if form else "remove it: `make ve` installs the lock into the ve, which nothing "
                 "else installs into"))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
