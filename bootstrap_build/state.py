"""What is beside the ve now, read without changing anything: our slots and link, a build's stamp, the no-op's check
that the current build is whole and unchanged, and the leftovers of interrupted runs."""

import os

from bootstrap_build import layout
from bootstrap_build.layout import MARKER, STAMP


def is_ours(slot):
    """A real directory carrying the marker we write first (or, from builds before the marker, our stamp)."""
    return (os.path.isdir(slot) and not os.path.islink(slot)
            and (os.path.isfile(os.path.join(slot, MARKER)) or os.path.isfile(os.path.join(slot, STAMP))))


def is_our_link(path):
    """A symlink naming one of our slots (its target may be gone): the kind of link only we write."""
    ve = path[:-len(".switching")] if path.endswith(".switching") else path
    try:
        return os.readlink(path) in {os.path.basename(slot) for slot in layout.slot_paths(ve)}
    except OSError:
        return False


def our_slot(ve):
    """The slot `ve` points at, if `ve` is our symlink to one of our slots; else None."""
    if not os.path.islink(ve):
        return None
    target = os.path.realpath(ve)
    return next((slot for slot in layout.slot_paths(ve) if os.path.realpath(slot) == target and is_ours(slot)), None)


def looks_whole(path):
    """The files without which a stamped directory is no ve at all: our marker, pyvenv.cfg (without it
    bin/python is the bare base interpreter) and bin/python. A stamp alone proves nothing: a deletion by an older
    version, interrupted, could leave the stamp behind them."""
    return all(os.path.exists(os.path.join(path, name)) for name in (MARKER, "pyvenv.cfg", layout.WHOLE_PYTHON))


def finished(path):
    """Our slot holding a finished build (its stamp and the files of looks_whole)."""
    return is_ours(path) and os.path.isfile(os.path.join(path, STAMP)) and looks_whole(path)


def read_stamp(path):
    """{"key", "inputs": {label: value}, "dists": [dist-info names] or None, "umask"} of a finished build, or None.

    The stamp is the last file a build writes: its key first (all the no-op check needs), then what the key was
    made of (to say why a rebuild happens), the distributions installed (to notice a ve changed by hand) and the
    umask its files were written under (what `make verify` checks their modes against).
    """
    try:
        with open(os.path.join(path, STAMP), encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    stamp = {"key": lines[0].strip() if lines else "", "inputs": {}, "dists": None, "umask": None}
    for line in lines[1:]:
        fields = line.split("\t")
        if fields[0] == "input" and len(fields) == 3:
            stamp["inputs"][fields[1]] = fields[2]
        elif fields[0] == "dists":
            stamp["dists"] = fields[1:]
        elif fields[0] == "umask" and len(fields) == 2:
            stamp["umask"] = int(fields[1], 8)
    return stamp


def write_stamp(slot, key, inputs, umask):
    """Written last: a slot with a stamp is a finished build (see read_stamp for the format)."""
    lines = [key] + [f"input\t{label}\t{value}" for label, value in inputs]
    lines.append("\t".join(["dists", *installed_dists(slot)]))
    lines.append(f"umask\t{umask:04o}")
    with open(os.path.join(slot, STAMP), "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


def installed_dists(path):
    """The dist-info directory names in a ve's site-packages, sorted: what a `pip install` or `uninstall` changes."""
    try:
        return sorted(name for name in os.listdir(built_site_packages(path)) if name.endswith(".dist-info"))
    except OSError:
        return []


def built_site_packages(path):
    """site-packages of the ve at `path`, whichever Python it was built for (lib/ holds one pythonX.Y)."""
    versions = [name for name in os.listdir(os.path.join(path, "lib")) if name.startswith("python")]
    return os.path.join(path, "lib", versions[0] if versions else "python", "site-packages")


def drift(path, stamp):
    """`+added -removed` distributions since the build (empty when none, or when the stamp predates the record)."""
    if stamp is None or stamp["dists"] is None:
        return ""
    now, then = installed_dists(path), stamp["dists"]
    if now == then:
        return ""
    return " ".join([f"+{name[:-10]}" for name in now if name not in then]
                    + [f"-{name[:-10]}" for name in then if name not in now])


def is_current(ve, key):
    """`ve` is our finished build for `key`, unchanged by hand: the no-op check (a stamp read, a few stats and one
    listdir)."""
    stamp = read_stamp(ve) if is_our_link(ve) and looks_whole(ve) else None
    return stamp is not None and stamp["key"] == key and not drift(ve, stamp)


def finished_slot(ve, key):
    """The other slot, if it holds our finished, unchanged build for `key` (after `make ve PYTHON=...` and back)."""
    current = os.path.realpath(ve) if os.path.islink(ve) else None
    for slot in layout.slot_paths(ve):
        stamp = read_stamp(slot) if finished(slot) and os.path.realpath(slot) != current else None
        if stamp and stamp["key"] == key and not drift(slot, stamp):
            return slot
    return None


def leftovers(ve):
    """What interrupted or killed runs left beside the ve, all ours by name or marker: the scratch, whatever was
    renamed away to be deleted, and any slot of ours that holds no finished build (half-built or half-deleted)."""
    where = os.path.dirname(ve)
    scratch = os.path.basename(layout.scratch_path(ve))
    prefixes = tuple(os.path.basename(path) + layout.DELETING
                     for path in [layout.scratch_path(ve)] + layout.slot_paths(ve))
    try:
        names = sorted(os.listdir(where))
    except OSError:
        return []
    found = [os.path.join(where, name) for name in names
             if name == scratch or name.startswith(prefixes) or name.startswith(scratch + ".moved-aside")]
    return found + [path for path in layout.slot_paths(ve) if is_ours(path) and not finished(path)]


def describe_ve(ve, name):
    """What `ve` really points at now, for the message after an interrupted build."""
    slot = our_slot(ve)
    if slot and finished(slot):
        return f"{name} still points at the previous finished build ({os.path.basename(slot)})"
    if os.path.lexists(ve):
        return f"{name} is as it was before this run (no finished build of make ve)"
    return f"there is no {name} yet"
