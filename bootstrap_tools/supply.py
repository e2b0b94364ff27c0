"""What `make freeze*` adds for the supply chain once the new tree is in place: the provenance record,
pylock.toml, and the report's upload dates and the releases the cooling-off held back.

Written after the journaled switch, like the build lock: a kill between the switch and these files leaves them
stale, which `make check` names and the next `make freeze` repairs (it rewrites both from the tree).
"""

from bootstrap_tools import cooldown, lockfile, provenance, pylock, report, uploads
from bootstrap_tools.wheels import is_artifact_of


def after_freeze(root, lock_text, before_lock, index_url, index_name, upgrade, write_file):
    """Write requirements-provenance.json and pylock.toml; return the report's supply-chain section (text)."""
    index = uploads.Uploads(index_url)
    label = uploads.index_label(index_url, index_name)
    problem = provenance.read(root)[1]
    if problem:
        print(f"==> {problem}: recording every file anew from {label}, none of its entries kept", flush=True)
    record_text, recorded = provenance.update(root, index, label)
    write_file(root / provenance.RECORD, record_text)
    write_file(root / pylock.NAME, pylock.render(root, lock_text, pylock.dev_lock_text(root)))
    return render(before_lock, lock_text, index, label, upgrade, recorded)


def locked_after(root, pins, index_url, cutoff):
    """[(file in requirements/, its pin, upload time)] for the files of `pins` the index says were uploaded at or
    after `cutoff`: the ones the cooling-off would hide from pip-compile.

    Asked of the index, never of requirements-provenance.json: a hand-edited record must not decide what a freeze
    takes. An index that does not say (a file:// index, which pip does not filter either) hides nothing.
    """
    limit, index, found = cooldown.parse(cutoff), uploads.Uploads(index_url), []
    for path in sorted((root / "requirements").glob("*")):
        if not path.is_file():
            continue
        digest = lockfile.sha256(path)
        pin = next((pin for pin in pins if is_artifact_of(path.name, digest, pin)), None)
        entry = pin and index.of_file(pin.name, digest)
        if entry and entry["upload-time"] and uploads.parse_time(entry["upload-time"]) >= limit:
            found.append((path, pin, entry["upload-time"]))
    return found


def render(before_lock, lock_text, index, label, upgrade, recorded):
    """The report lines: each new version's upload date, what the cooling-off held back, new provenance."""
    cutoff = cooldown.current()
    lines = [f"Supply chain (index: {label}; cooling-off: "
             + (f"releases uploaded before {cutoff})" if cutoff else "off, COOLDOWN_DAYS=0)") + ":"]
    for kind, text in report.pin_changes(before_lock, lock_text):
        if kind not in ("upgraded", "downgraded", "added"):
            continue
        name, _, rest = text.partition(" ")
        version = rest.split(" -> ")[-1].split(" ")[0]
        when = index.released(name, version)
        lines.append(f"  {'uploaded:':10} {name} {version} on "
                     f"{uploads.day(when) if when else '? (the index did not say)'}")
    if cutoff:
        pins, _ = lockfile.parse(lock_text)
        # Kept pins were chosen before: only what this run could move is held back by it.
        moved = {text.partition(" ")[0] for _, text in report.pin_changes(before_lock, lock_text)}
        for pin in sorted({(pin.name, pin.version) for pin in pins}):
            if upgrade is True or pin[0] in moved or (upgrade and pin[0] in upgrade):
                for version, when in index.held_back(pin[0], pin[1], cutoff):
                    lines.append(f"  {'held back:':10} {pin[0]} {version} (uploaded {uploads.day(when)}, inside "
                                 "the cooling-off; a later freeze-upgrade takes it)")
    lines += [f"  {kind + ':':10} {text}" for kind, text in recorded]
    if len(lines) == 1:
        lines.append("  nothing new")
    return "\n".join(lines) + "\n"
