"""Declared platforms (TARGET_PLATFORMS): what pip sees on each, written down so any one machine can lock for all.

pip-compile evaluates markers and picks wheels for the machine it runs on. A faithful resolution for another
platform needs both halves of that platform: its marker environment (sys_platform, platform_machine, ...) and
its list of supported wheel tags, what pex calls a "complete platform". Each declared platform is described by
one committed file, platforms/<name>.json:

- `environment`: the marker variables that describe the platform (not the Python: python_version and
  python_full_version come from the target interpreter). platform_release and platform_version are left out on
  purpose (a kernel's version is a fact about one host, not a platform): a marker that needs a variable the
  descriptor lacks stops the freeze with one ERROR, never a guess;
- `pythons`: per target Python (X.Y), its supported tags in pip's order of preference, written compactly:
  `cp312-abi3-*` stands for that interpreter and ABI on each of `platforms`, in order.

`record` writes the descriptor of the machine it runs on from `packaging.tags.sys_tags()` and
`packaging.markers.default_environment()` (for the other target Pythons, the same platform list with their own
interpreter tags, as pip's `--python-version` does). `generate` writes one for a known platform from its facts
(a glibc or macOS version and an architecture), the same bytes on any machine.
"""

import argparse
import json
import platform
import sys
from pathlib import Path

from packaging import tags
from packaging.markers import Marker, UndefinedEnvironmentName, default_environment
from packaging.version import InvalidVersion, Version

from bootstrap_tools.pythons import marker_for, python_minor
from bootstrap_tools.run import ToolError, fail

DIRECTORY = "platforms"
# The variables a descriptor records: the platform's own (the Python's come from the target interpreter).
PLATFORM_VARIABLES = ("os_name", "sys_platform", "platform_machine", "platform_system",
                      "platform_python_implementation", "implementation_name")
# Facts of the platforms a descriptor can be generated for, on a machine that is not one of them. The macOS
# versions are the oldest a host of the platform is assumed to run, and for Linux the glibc floor (GLIBC_FLOOR,
# one for every Linux platform of a lock): a wheel needing a newer one is not taken.
KNOWN = {
    "linux-x86_64": {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64"},
    "linux-aarch64": {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "aarch64"},
    "macos-arm64": {"sys_platform": "darwin", "platform_system": "Darwin", "platform_machine": "arm64",
                    "macos": (14, 0)},
    "macos-x86_64": {"sys_platform": "darwin", "platform_system": "Darwin", "platform_machine": "x86_64",
                     "macos": (12, 0)},
}
# manylinux's legacy names, listed by pip right after the PEP 600 name they alias.
LEGACY_MANYLINUX = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}
# The oldest glibc a Linux host of the lock is assumed to run, unless GLIBC_FLOOR says otherwise: uv's default
# manylinux target, and what RHEL 8, Debian 10 and Ubuntu 20.04 (2.31) and newer have.
DEFAULT_GLIBC_FLOOR = "2.28"


def this_platform():
    """The name of the platform this machine is (linux-x86_64, macos-arm64, ...)."""
    system = {"linux": "linux", "darwin": "macos"}.get(sys.platform, sys.platform)
    machine = platform.machine().lower()
    return f"{system}-{'arm64' if system == 'macos' and machine == 'aarch64' else machine}"


# ---------------------------------------------------------------- descriptors


def compact(tag_list, platforms):
    """["cp312-cp312-*", ..., "py3-none-any"]: runs of one interpreter-ABI over every platform, in order, as `*`."""
    out, index = [], 0
    width = len(platforms)
    while index < len(tag_list):
        tag = tag_list[index]
        run = tag_list[index:index + width]
        if width and [t.platform for t in run] == platforms and all(
                (t.interpreter, t.abi) == (tag.interpreter, tag.abi) for t in run):
            out.append(f"{tag.interpreter}-{tag.abi}-*")
            index += width
        else:
            out.append(str(tag))
            index += 1
    return out


def expand(descriptor, python):
    """The tags of `python` on the platform, most preferred first (packaging Tag objects)."""
    entry = descriptor["pythons"].get(python)
    if entry is None:
        raise ToolError(f"{descriptor_path_name(descriptor)} has no tags for Python {python}: run `make platforms` "
                        f"(or record it on a {descriptor['name']} host, see README) with {python} in TARGET_PYTHONS.")
    result = []
    for text in entry:
        interpreter, abi, platform_ = text.split("-")
        result += ([tags.Tag(interpreter, abi, p) for p in descriptor["platforms"]] if platform_ == "*"
                   else [tags.Tag(interpreter, abi, platform_)])
    return result


def interpreter_tags(python, platforms):
    """What pip accepts on CPython `python` with these platform tags (its get_supported for a given version)."""
    version = python_minor(python)
    interpreter = "cp" + "".join(map(str, version))
    return [*tags.cpython_tags(python_version=version, abis=[interpreter], platforms=platforms),
            *tags.compatible_tags(python_version=version, interpreter=interpreter, platforms=platforms)]


def describe(name, environment, platforms, per_python, how):
    return {
        "generated_by": f"`make platforms` (bootstrap_tools/platforms.py {how}); do not edit",
        "name": name,
        "how": how,
        "environment": {key: environment[key] for key in PLATFORM_VARIABLES},
        "platforms": platforms,
        "pythons": {python: compact(tag_list, platforms) for python, tag_list in sorted(
            per_python.items(), key=lambda item: Version(item[0]))},
    }


def recorded(pythons):
    """The descriptor of this machine: its marker environment and, per target Python, its tags."""
    platforms = list(dict.fromkeys(tags.platform_tags()))
    running = "%d.%d" % sys.version_info[:2]
    per_python = {python: interpreter_tags(python, platforms) for python in pythons if python != running}
    per_python[running] = list(tags.sys_tags())
    return describe(this_platform(), default_environment(), platforms, per_python, "record")


def generated(name, pythons, floor=DEFAULT_GLIBC_FLOOR):
    """The descriptor of a known platform from its facts alone (and, on Linux, the glibc floor): the same on every
    machine."""
    facts = KNOWN.get(name)
    if facts is None:
        raise ToolError(f"no known facts for platform {name!r} (known: {', '.join(KNOWN)}): record its descriptor "
                        f"on a {name} host with `make platforms RECORD=1`, and commit {DIRECTORY}/{name}.json.")
    machine = facts["platform_machine"]
    if facts["sys_platform"] == "linux":
        major, newest = glibc_floor(floor)
        oldest = 17 if machine == "aarch64" else 5
        platforms = []
        for minor in range(newest, oldest - 1, -1):
            platforms.append(f"manylinux_{major}_{minor}_{machine}")
            if (major, minor) in LEGACY_MANYLINUX:
                platforms.append(f"{LEGACY_MANYLINUX[major, minor]}_{machine}")
        platforms.append(f"linux_{machine}")
    else:
        platforms = list(tags.mac_platforms(facts["macos"], machine))
    environment = {"os_name": "posix", "platform_python_implementation": "CPython", "implementation_name": "cpython",
                   **{key: value for key, value in facts.items() if key in PLATFORM_VARIABLES}}
    per_python = {python: interpreter_tags(python, platforms) for python in pythons}
    return describe(name, environment, platforms, per_python, "generate")


# ---------------------------------------------------------------- the glibc floor


def glibc_floor(text):
    """GLIBC_FLOOR ("2.28") as (2, 28); anything else is one ERROR saying what is expected."""
    try:
        release = Version(text).release
    except InvalidVersion:
        release = ()
    if len(release) != 2 or str(text).strip() != ".".join(map(str, release)) or release[0] != 2:
        raise ToolError(f"GLIBC_FLOOR={text} is not a glibc version such as {DEFAULT_GLIBC_FLOOR} (major.minor, the "
                        "oldest glibc a Linux host of the lock runs): set it so in the Makefile or on the command "
                        "line.")
    return release


def glibc_of(platform_tag):
    """The glibc a manylinux platform tag needs ((2, 34) for manylinux_2_34_x86_64), None for any other tag."""
    for version, legacy in LEGACY_MANYLINUX.items():
        if platform_tag.startswith(f"{legacy}_"):
            return version
    parts = platform_tag.split("_", 3)
    if len(parts) == 4 and parts[0] == "manylinux" and parts[1].isdigit() and parts[2].isdigit():
        return int(parts[1]), int(parts[2])
    return None


def is_linux(descriptor):
    return descriptor["environment"].get("sys_platform") == "linux"


def above_floor(platform_tag, floor):
    glibc = glibc_of(platform_tag)
    return glibc is not None and glibc > glibc_floor(floor)


def cut_at_floor(descriptor, floor):
    """The descriptor without the manylinux tags that need a newer glibc than the floor: a recording host's own
    glibc never raises what the lock assumes of every Linux host."""
    if not is_linux(descriptor):
        return descriptor
    kept = [tag for tag in descriptor["platforms"] if not above_floor(tag, floor)]
    if kept == descriptor["platforms"]:
        return descriptor
    per_python = {python: [tag for tag in expand(descriptor, python) if not above_floor(tag.platform, floor)]
                  for python in descriptor["pythons"]}
    return describe(descriptor["name"], descriptor["environment"], kept, per_python, descriptor["how"])


def descriptor_problems(root, names, floor):
    """One line per declared descriptor that is not what `make platforms` makes of it: a generated one is
    regenerated and compared (a hand edit, or another GLIBC_FLOOR), a recorded one must not offer manylinux tags
    above the floor nor describe another platform than its name. Missing or unreadable ones are load()'s."""
    problems = []
    for name in dict.fromkeys(names):
        try:
            descriptor = load(root, name)
        except ToolError:
            continue
        path = descriptor_path_name(descriptor)
        facts = KNOWN.get(name, {})
        wrong = sorted(key for key, value in facts.items() if descriptor["environment"].get(key) != value)
        if descriptor.get("how") == "generate":
            try:
                expected = render(generated(name, sorted(descriptor["pythons"], key=Version), floor))
            except (ToolError, InvalidVersion):
                expected = None
            if expected != path_of(root, name).read_text(encoding="utf-8"):
                problems.append(f"{path} is not what `make platforms` generates for {name} (edited by hand, or "
                                f"GLIBC_FLOOR is not the one it was generated for): run `make platforms`, which "
                                "writes it again")
        elif wrong:
            given = ", ".join(f"{key}={descriptor['environment'].get(key)!r}" for key in wrong)
            problems.append(f"{path} gives {given}, which {name} does not have (edited by hand?): restore it with "
                            f"`git checkout -- "
                            f"{path}`, or record it again on a {name} host with `make platforms RECORD=1`")
        elif is_linux(descriptor):
            above = [tag for tag in descriptor["platforms"] if above_floor(tag, floor)]
            if above:
                newest = ".".join(map(str, max(map(glibc_of, above))))
                problems.append(f"{path} (recorded) offers manylinux tags up to glibc {newest}, above the glibc "
                                f"floor {floor} (GLIBC_FLOOR) every Linux platform of the lock shares: run "
                                "`make platforms`, which cuts them at the floor")
    return problems


def wheels_above_floor(wheelhouse, floor):
    """One line per Linux wheel in `wheelhouse` that needs a newer glibc than the floor (every manylinux tag it
    has is above it)."""
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    problems = []
    for path in sorted(wheelhouse.glob("*.whl")):
        try:
            wheel_tags = parse_wheel_filename(path.name)[3]
        except InvalidWheelFilename:
            continue
        needs = [glibc_of(tag.platform) for tag in wheel_tags if glibc_of(tag.platform)]
        if needs and min(needs) > glibc_floor(floor):
            problems.append(f"requirements/{path.name} needs glibc {'.'.join(map(str, min(needs)))}, above the "
                            f"lock's glibc floor {floor} (GLIBC_FLOOR): a Linux host at the floor cannot install "
                            "it; run `make freeze` (it takes a wheel for the floor, or says none exists), or raise "
                            "GLIBC_FLOOR")
    return problems


def duplicates(names):
    return sorted({name for name in names if names.count(name) > 1})


def path_of(root, name):
    return Path(root) / DIRECTORY / f"{name}.json"


def descriptor_path_name(descriptor):
    return f"{DIRECTORY}/{descriptor['name']}.json"


def render(descriptor):
    return json.dumps(descriptor, indent=1) + "\n"


def load(root, name):
    path = path_of(root, name)
    fix = (f"run `make platforms` to generate it from known facts, or record it on a {name} host (see README, "
           "declared platforms)")
    try:
        descriptor = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ToolError(f"platform {name} is declared in TARGET_PLATFORMS but {DIRECTORY}/{name}.json, its "
                        f"descriptor, is missing: {fix}.") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ToolError(f"{DIRECTORY}/{name}.json is not a readable descriptor ({exc}): restore it with "
                        f"`git checkout -- {DIRECTORY}/{name}.json`, or {fix}.") from None
    if not isinstance(descriptor, dict) or not {"name", "environment", "platforms", "pythons"} <= set(descriptor):
        raise ToolError(f"{DIRECTORY}/{name}.json lacks name, environment, platforms or pythons: {fix}.")
    if descriptor["name"] != name:
        raise ToolError(f"{DIRECTORY}/{name}.json describes {descriptor['name']!r}, not {name}: {fix}.")
    return descriptor


# ---------------------------------------------------------------- pairs: (platform, Python)


class Pair(str):
    """One target of a lock with declared platforms: a Python on a platform. As text: `3.12 on macos-arm64`,
    which is how messages name it ("Python 3.12 on macos-arm64")."""

    def __new__(cls, descriptor, python):
        self = super().__new__(cls, f"{python} on {descriptor['name']}")
        self.descriptor, self.python, self.platform = descriptor, python, descriptor["name"]
        return self

    def __reduce__(self):
        return Pair, (self.descriptor, self.python)

    def environment(self):
        """The marker environment of this pair; variables the descriptor lacks stay absent (an error if used)."""
        return {**self.descriptor["environment"], "python_version": self.python,
                "python_full_version": f"{self.python}.0", "implementation_version": f"{self.python}.0"}

    def tags(self):
        if not hasattr(self, "_tags"):
            self._tags = expand(self.descriptor, self.python)
        return self._tags

    def slug(self):
        """A file name part: `macos-arm64-3.12`."""
        return f"{self.platform}-{self.python}"

    def spec(self, missing):
        """What as_platform.py needs to run pip-compile or pip as on this pair."""
        return {"environment": self.descriptor["environment"], "tags": [str(tag) for tag in self.tags()],
                "missing": str(missing)}


def unfit(path, target):
    """wheels.unfit_reason, except that on a declared platform an sdist fits: it builds at `make ve` there,
    offline, with the build lock (freeze builds wheels for the machine it runs on only)."""
    from bootstrap_tools.wheels import is_sdist, unfit_reason

    if isinstance(target, Pair) and is_sdist(path.name):
        return None
    return unfit_reason(path, target)


def python_of(target):
    """The X.Y of a target: a Pair's Python, or the target itself."""
    return target.python if isinstance(target, Pair) else target


def order(target):
    """Sort key: oldest Python first, then the declared order of platforms."""
    return (Version(python_of(target)), getattr(target, "rank", 0))


def describe_targets(targets):
    """`Python 3.10 3.11`, or `Python 3.10 3.11 on linux-x86_64 macos-arm64 (4 pairs)` for pairs."""
    pythons = list(dict.fromkeys(python_of(target) for target in targets))
    names = list(dict.fromkeys(target.platform for target in targets if isinstance(target, Pair)))
    if not names:
        return f"Python {' '.join(pythons)}"
    return f"Python {' '.join(pythons)} on {' '.join(names)} ({len(targets)} pairs)"


def label(targets):
    """`Python 3.10 3.11`; for pairs `Python 3.10 3.11 on linux-x86_64 macos-arm64`, or one such part per set of
    platforms sharing the same Pythons (`Python 3.10 on linux-x86_64; Python 3.10 3.11 on macos-arm64`)."""
    if not targets or not isinstance(targets[0], Pair):
        return f"Python {' '.join(targets)}"
    by_platform = {}
    for target in targets:
        by_platform.setdefault(target.platform, []).append(target.python)
    groups = {}
    for name, pythons in by_platform.items():
        groups.setdefault(tuple(pythons), []).append(name)
    return "; ".join(f"Python {' '.join(pythons)} on {' '.join(names)}" for pythons, names in groups.items())


def lock_targets(lock_text, root=None):
    """The targets of a lock: its `# targets:` Pythons, or every (platform, Python) pair when it names platforms
    (their descriptors read from `root`, this checkout by default; without them, the Pythons alone)."""
    pythons, names = lockfile_header(lock_text, "targets"), lockfile_header(lock_text, "platforms")
    if not names:
        return pythons
    try:
        return pairs(root or Path(__file__).resolve().parent.parent, pythons, names)
    except ToolError:
        return pythons


def lockfile_header(text, key):
    for line in text.splitlines():
        if line.startswith(f"# {key}:"):
            return line.split(":", 1)[1].split()
    return []


def pairs(root, pythons, names):
    """[Pair] for every declared platform and Python (Pythons first, oldest first); `pythons` when none declared."""
    if not names:
        return list(pythons)
    descriptors = [load(root, name) for name in names]
    result = [Pair(descriptor, python) for python in sorted(pythons, key=Version) for descriptor in descriptors]
    for pair in result:
        pair.rank = names.index(pair.platform)
    for pair in result:
        pair.tags()  # a Python the descriptor lacks fails here, before any work
    return result


def evaluate(marker, target):
    """Whether `marker` holds on `target` (a Pair, or a Python X.Y on this machine); a variable the pair's
    descriptor lacks is an error naming it, never a guess."""
    marker = marker if isinstance(marker, Marker) else Marker(marker)
    if not isinstance(target, Pair):
        return marker.evaluate({"python_version": target, "python_full_version": f"{target}.0"})
    environment = target.environment()
    # Marker.evaluate fills what it is not given from this machine: a variable the descriptor lacks must fail.
    lacking = sorted(variables(marker) - set(environment) - {"extra", "extras", "dependency_groups"})
    if lacking:
        raise ToolError(missing_variable(", ".join(lacking), target.platform, marker))
    try:
        return marker.evaluate(environment)
    except UndefinedEnvironmentName as exc:
        raise ToolError(missing_variable(exc.args[0] if exc.args else exc, target.platform, marker)) from None


def variables(marker):
    """The names of the environment variables `marker` compares (from packaging's parsed form of it)."""
    found, pending = set(), [getattr(marker, "_markers", [])]
    while pending:
        item = pending.pop()
        if isinstance(item, (list, tuple)):
            pending.extend(item)
        elif type(item).__name__ == "Variable":
            found.add(item.value)
    return found


def missing_variable(name, platform_name, marker=None):
    where = f" `{marker}`" if marker is not None else ""
    return (f"the marker{where} needs {name}, which {DIRECTORY}/{platform_name}.json does not give (a descriptor "
            f"records {', '.join(PLATFORM_VARIABLES)}; a value of one host is never guessed): change the "
            f"requirement, or drop {platform_name} from TARGET_PLATFORMS.")


# ---------------------------------------------------------------- markers


def atoms(descriptors):
    """(marker text, {platform names it selects}) for the single comparisons that tell platforms apart."""
    found = []
    for variable in ("sys_platform", "platform_machine"):
        for value in sorted({d["environment"][variable] for d in descriptors}):
            chosen = {d["name"] for d in descriptors if d["environment"][variable] == value}
            found.append((f'{variable} == "{value}"', chosen))
    return found


def platform_marker(used, descriptors):
    """The simplest sys_platform/platform_machine marker true for exactly the platforms named in `used`."""
    every = {d["name"] for d in descriptors}
    used = set(used)
    if used == every:
        return None
    candidates = atoms(descriptors)
    for text, chosen in candidates:
        if chosen == used:
            return text
    parts = []
    for descriptor in descriptors:
        name = descriptor["name"]
        if name not in used:
            continue
        alone = [text for text, chosen in candidates if chosen == {name}]
        if alone:
            parts.append(alone[0])
        else:
            env = descriptor["environment"]
            parts.append(f'(sys_platform == "{env["sys_platform"]}" and platform_machine == '
                         f'"{env["platform_machine"]}")')
    return " or ".join(parts)


def pair_marker(used, targets):
    """The simplest marker selecting exactly the pairs `used` among `targets` (None: all of them): a platform part
    and a python_version part when every platform involved has the same Pythons, else one clause per platform."""
    descriptors = list({t.platform: t.descriptor for t in targets}.values())
    pythons = sorted({t.python for t in targets}, key=Version)
    by_platform = {}
    for target in used:
        by_platform.setdefault(target.platform, set()).add(target.python)
    if set(used) == set(targets):
        return None

    def join(*parts):
        parts = [part for part in parts if part]
        return " and ".join(f"({part})" if " or " in part and len(parts) > 1 else part for part in parts)

    shared = {frozenset(v) for v in by_platform.values()}
    if len(shared) == 1:
        text = join(platform_marker(by_platform, descriptors), marker_for(sorted(next(iter(shared))), pythons))
    else:
        clauses = [join(platform_marker({name}, descriptors), marker_for(sorted(used_pythons, key=Version), pythons))
                   for name, used_pythons in sorted(by_platform.items())]
        text = " or ".join(f"({clause})" if " and " in clause or " or " in clause else clause for clause in clauses)
    chosen = {t for t in targets if evaluate(text, t)}
    if chosen != set(used):
        raise ToolError(f"internal error: marker {text!r} selects {sorted(chosen)}, wanted {sorted(used)}")
    return text


# ---------------------------------------------------------------- the report


def report_lines(lock_pins, targets, files, fits):
    """Per platform: the pins only some platforms install, and the bytes of the artifacts only it needs.

    files: {relative path: size}; fits(path, target): whether that artifact serves that pair.
    """
    if not targets or not isinstance(targets[0], Pair):
        return []
    names = list(dict.fromkeys(t.platform for t in targets))
    lines = ["Platforms (TARGET_PLATFORMS):"]
    users = {}  # artifact -> platforms that install it
    for pin in lock_pins:
        for target in targets:
            if pin.marker and not evaluate(pin.marker, target):
                continue
            for path in files:
                if fits(path, pin, target):
                    users.setdefault(path, set()).add(target.platform)
                    break
    for name in names:
        mine = [t for t in targets if t.platform == name]
        only = sorted(str(pin) for pin in lock_pins
                      if pin.marker and any(evaluate(pin.marker, t) for t in mine)
                      and not all(any(evaluate(pin.marker, t) for t in targets if t.platform == other)
                                  for other in names))
        own = sum(files[path] for path, where in users.items() if where == {name})
        lines.append(f"  {name}: {', '.join(only) or 'no pin of its own'}; {own:,} bytes of artifacts only it "
                     "needs")
    return lines


# ---------------------------------------------------------------- command line


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(Path(__file__).resolve().parent.parent))
    parser.add_argument("--pythons", default="3.10 3.11 3.12 3.13", type=str.split)
    parser.add_argument("--record", action="store_true",
                        help="record this machine's descriptor (replacing a generated one)")
    parser.add_argument("--glibc-floor", default=DEFAULT_GLIBC_FLOOR,
                        help="the oldest glibc of every Linux host (GLIBC_FLOOR): no manylinux tag above it")
    parser.add_argument("names", nargs="*", help="platforms to generate from known facts, unless recorded")
    args = parser.parse_args(argv)
    try:
        glibc_floor(args.glibc_floor)
        written = []
        if args.record:
            descriptor = cut_at_floor(recorded(args.pythons), args.glibc_floor)
            written.append(write(args.root, descriptor))
        for name in args.names:
            path = path_of(args.root, name)
            if path.exists() and json.loads(path.read_text(encoding="utf-8")).get("how") == "record":
                if set(args.pythons) <= set(json.loads(path.read_text(encoding="utf-8"))["pythons"]):
                    # Recorded on the real platform: never replaced by generated facts, only cut at the floor.
                    written.append(write(args.root, cut_at_floor(load(args.root, name), args.glibc_floor)))
                    continue
                raise ToolError(f"{DIRECTORY}/{name}.json was recorded on a {name} host and lacks some of Python "
                                f"{' '.join(args.pythons)}: record it again there with `make platforms RECORD=1`.")
            if args.record and name == this_platform():
                continue
            written.append(write(args.root, generated(name, args.pythons, args.glibc_floor)))
    except ToolError as exc:
        fail(str(exc))
    if not args.record and not args.names:
        print("==> no platform declared (TARGET_PLATFORMS is empty: the lock is for the platform `make freeze` runs "
              f"on); `make platforms RECORD=1` records this one's ({this_platform()})")
    written = [path for path in written if path is not None]
    for path in written:
        print(f"==> wrote {path}")
    if (args.record or args.names) and not written:
        print(f"==> {DIRECTORY}/ is up to date")
    return 0


def write(root, descriptor):
    path = path_of(root, descriptor["name"])
    path.parent.mkdir(parents=True, exist_ok=True)
    text = render(descriptor)
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return None
    temporary = path.with_name(f".{path.name}.new")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)
    return path.relative_to(root) if path.is_relative_to(Path(root)) else path


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
