"""requirements.in as the convention supports it: one requirement a line, `name[extras] [specifiers] [; marker]`.

Everything a lock of hashed artifacts from requirements/ cannot carry is refused, one line each, by `make freeze`
before pip-compile runs and by `make check` on every line: options (an index named in the file would be used by
pip-compile but not by the download step; `-e` and `-r` cannot be locked by hash), direct URL and path
requirements (no index serves them, so no pin of them can be refetched or checked).
"""

import re

from packaging.requirements import InvalidRequirement, Requirement

from bootstrap_build import lockfile as build_lockfile

INDEX_OPTIONS = ("-i", "--index-url", "--extra-index-url", "-f", "--find-links", "--trusted-host", "--no-index")
FIX_INDEX = ("the index of a freeze is named for that run only: remove the line and run "
             "`make freeze INDEX_URL=<index>`")


def decoded(data, name):
    """(text, None) or (None, problem) for the bytes of a file that must be UTF-8 text."""
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        return None, (f"{name} is not UTF-8 text (byte {exc.start}: {data[exc.start:exc.start + 1]!r}): save it as "
                      "UTF-8")


def read(path):
    """([(line number, line, Requirement)], [problems]) of requirements.in at `path`."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return [], [f"cannot read {path.name}: {exc.strerror}: restore it with `git checkout -- {path.name}`"]
    text, problem = decoded(data, path.name)
    if problem:
        return [], [problem]
    requirements, problems = [], []
    for number, _, line in build_lockfile.logical_lines(text):  # the one reader, pip's rules
        shown = re.sub(r"//[^/@\s]*@", "//***@", line)  # an index URL's credentials are never echoed
        where = f"{path.name} line {number} `{shown}`"
        why = refusal(line)
        if why:
            problems.append(f"{where} {why}")
            continue
        requirements.append((number, line, Requirement(line)))
    return requirements, problems


def problems(path):
    return read(path)[1]


def refusal(line):
    """Why the convention cannot lock `line` of requirements.in, and the fix; None for a plain requirement."""
    if "$" in line:
        return ("holds `$`, which pip-compile replaces from the environment (`${VAR}`), so the lock would depend on "
                "who runs `make freeze`: write the value itself")
    if line.startswith("-"):
        option = line.split()[0].split("=")[0]
        if option in INDEX_OPTIONS:
            return f"names an index or a place to find packages, which the download step would not use: {FIX_INDEX}"
        if option in ("-e", "--editable"):
            return ("is an editable requirement, which cannot be locked by hash nor installed from requirements/: "
                    "require a release by name (publish it to the index), or install it by hand in ./ve")
        if option in ("-r", "--requirement"):
            return "includes another file, which the convention does not follow: copy its requirements here"
        if option in ("-c", "--constraint"):
            return "names a constraints file: remove the line and run `make freeze CONSTRAINTS=<file>`"
        return "is an option; requirements.in holds only requirements (`name[extras] [version] [; marker]`)"
    try:
        requirement = Requirement(line)
    except InvalidRequirement as exc:
        if "/" in line or line.startswith("."):
            return ("is a path, which the convention cannot lock (no index serves it): require a release by name "
                    "(publish it to the index)")
        return f"is not a requirement ({str(exc).splitlines()[0]}): fix the line"
    if requirement.url:
        return ("is a direct URL requirement, which the convention cannot lock (its artifact would not come from "
                "the index): require a release by name (publish it to the index)")
    return None
