"""What `pip check` would say of a new ve, without starting pip: run by the ve's Python
(`python -I -S -B dependency_check.py SITE [name[extra,...] ...]`), never imported, with the seed pip's own
`packaging`, reading METADATA as `pip check` reads it.

Every Requires-Dist of every installed distribution, with the extras the lock's pins (and, in turn, their
requirements) ask for, must be installed in a version its specifier allows. Prints one line per problem, then
`checked` (the last line of a check that ran to its end)."""

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

    def active(name):
        """The requirements of `name` that hold here, with every extra asked for, by the lock or a dependent."""
        for line in metadata[name]["requires"]:
            requirement = Requirement(line)
            extras = [""] + sorted(wanted.get(name, ()))
            if not requirement.marker or any(requirement.marker.evaluate({"extra": extra}) for extra in extras):
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
                print(f"{dist['name']} {dist['version']} requires {requirement}, which is not installed")
            elif not requirement.specifier.contains(found["version"], prereleases=True):
                print(f"{dist['name']} {dist['version']} requires {requirement}, but {found['name']} "
                      f"{found['version']} is installed")
    print("checked")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
