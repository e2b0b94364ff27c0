"""What `pip check` would say of a new ve, without starting pip: run by the ve's Python
(`python -I -S -B dependency_check.py SITE [name[extra,...] ...]`), never imported, with the seed pip's own
`packaging`, reading METADATA as `pip check` reads it.

Every Requires-Dist of every installed distribution, with the extras the lock's pins (and, in turn, their
requirements) ask for, must be installed in a version its specifier allows. Prints one line per problem, then
`checked` (the last line of a check that ran to its end). A problem whose fix is not the usual one carries it after
a tab: a requirement left out because its marker names a patch release (python_full_version)."""

import gc
import os
import sys


def headers(path):
    """Name, Version and Requires-Dist of METADATA's header block (RFC 822: a line starting with white space
    continues the one before)."""
    found = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if not line.strip():
                break
            if line[0] in " \t" and found:
                found[-1][1] += " " + line.strip()
            elif ":" in line:
                found.append(list(map(str.strip, line.split(":", 1))))
    return {"name": next(v for k, v in found if k.lower() == "name"),
            "version": next(v for k, v in found if k.lower() == "version"),
            "requires": [v for k, v in found if k.lower() == "requires-dist"]}


def main(site, pins):
    gc.disable()  # a short run that frees what it makes
    sys.path.insert(0, site)
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.utils import canonicalize_name

    metadata, wanted = {}, {}
    for name in sorted(os.listdir(site)):
        if name.endswith(".dist-info"):
            dist = headers(os.path.join(site, name, "METADATA"))
            metadata[canonicalize_name(dist["name"])] = dist
    for pin in pins:  # `name[extra,...]`: the extras the lock asks for
        requirement = Requirement(pin)
        wanted.setdefault(canonicalize_name(requirement.name), set()).update(requirement.extras)

    def holds(requirement, name, **python):
        """Whether `requirement` of `name` holds here (or with `python`'s variables), with every extra asked for."""
        extras = [""] + sorted(wanted.get(name, ()))
        return not requirement.marker or any(requirement.marker.evaluate({"extra": extra, **python})
                                             for extra in extras)

    def active(name):
        """The requirements of `name` that hold here, with every extra asked for, by the lock or a dependent."""
        for line in metadata[name]["requires"]:
            requirement = Requirement(line)
            if holds(requirement, name):
                yield requirement

    size = -1
    while size != sum(map(len, wanted.values())):  # extras asked for by dependencies, until nothing more is asked
        size = sum(map(len, wanted.values()))
        for name in list(metadata):
            for requirement in active(name):
                if requirement.extras:
                    wanted.setdefault(canonicalize_name(requirement.name), set()).update(requirement.extras)
    for name, dist in sorted(metadata.items()):
        for requirement in active(name):
            found = metadata.get(canonicalize_name(requirement.name))
            if found is None:
                fix = patch_release_fix(requirement, holds(requirement, name, **minor_start()))
                print(f"{dist['name']} {dist['version']} requires {requirement}, which is not installed"
                      + (f"\t{fix}" if fix else ""))
            elif not requirement.specifier.contains(found["version"], prereleases=True):
                print(f"{dist['name']} {dist['version']} requires {requirement}, but {found['name']} "
                      f"{found['version']} is installed")
    print("checked")


def minor_start():
    """The Python half of the marker environment a freeze resolves this Python's minor version as (X.Y.0,
    bootstrap_tools/targets.py resolved_as)."""
    release = "%d.%d.0" % sys.version_info[:2]
    return {"python_full_version": release, "implementation_version": release}


def patch_release_fix(requirement, holds_at_minor_start):
    """The fix for a requirement left out of the lock because its marker names a patch release, or None.

    A freeze resolves X.Y as X.Y.0: what holds there is locked, so a lock lacking it was resolved for another patch
    release, by an older freeze, and a freeze now writes another lock. What holds only from a later patch release
    a freeze leaves out every time: asking for it in requirements.in is what locks it."""
    marker = str(requirement.marker or "")
    if "python_full_version" not in marker and "implementation_version" not in marker:
        return None
    here, start = "%d.%d.%d" % sys.version_info[:3], minor_start()["python_full_version"]
    if holds_at_minor_start:
        return (f"The lock was resolved for another patch release of Python {start[:-2]} than this {here}, by an "
                f"older `make freeze`: run `make freeze` with this convention version, which resolves for the whole "
                f"minor version (as {start}, so every {start[:-2]} gets what it needs), and commit the lock.")
    return (f"Its marker holds from a later patch release than {start}, as which `make freeze` resolves the whole "
            f"minor version, so every freeze leaves it out: add `{requirement.name}{requirement.specifier}` to "
            "requirements.in (the other patch releases install it too), run `make freeze` and commit the lock.")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
