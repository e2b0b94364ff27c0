"""One version of each package for every target Python, unless none fits them all (RESOLUTION=fewest).

Each target is first resolved on its own (targets.compile_one), and each takes the newest release that fits it:
Django 5.2 below 3.12, 6.1 from 3.12 on. An application tested on one Python and deployed on another would then
run another major version of its framework, and nothing would say so. So when the per-target results disagree,
every target is resolved again with one shared version of each disagreeing package, tried in the order of the
oldest target that chose it (the oldest target is the most constrained, so its choice is the one most likely to
fit the others, and it already resolved together with the rest of that target's pins). A version that some target
cannot take is ruled out, with the reason, and the next candidate is tried: first by asking pip for that version
alone under each other target (Requires-Python, wheel tags; no resolution), then by the resolution itself. A
package that runs out of candidates keeps one version per target, and the reasons go into the freeze report.

The second resolution offers the shared versions as pip-compile's existing pins (the output file it starts from),
not as a constraints file: pip-compile keeps an existing pin when it can and drops it when it cannot, so one run
per target says which shared versions that target can take, and the lock's `# via` lines never name a scratch
file. The strategy itself is pure (`unify` takes the compile and diagnose steps as functions), so it is tested
without pip.
"""

import re

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from bootstrap_tools import lockfile, platforms

STRATEGIES = ("fewest", "newest")
# Each failed round rules out at least one candidate version, so the loop ends anyway; this bounds the rare
# case of successful rounds that keep moving other packages (each round costs one pip-compile per target).
MAX_ROUNDS = 25
NEWEST_REASON = "RESOLUTION=newest: each target takes its own newest release"


class Unresolvable(Exception):
    """pip-compile failed outright for one target with the shared versions offered (its cause line)."""


def versions(text):
    """{name: version} of one target's pip-compile output."""
    found = {}
    for line in lockfile.requirement_lines(text):
        pin = lockfile.parse_line(line)
        if isinstance(pin, lockfile.Pin):
            found[pin.name] = pin.version
    return found


def by_python(targets):
    return sorted(targets, key=platforms.order)  # a target may be a (platform, Python) pair


def spread(per_target, targets):
    """{name: [(version, [targets])]} for every package with more than one version among the targets that have it;
    the versions in the order of the oldest target that chose each."""
    found = {}
    for target in by_python(targets):
        for name, version in per_target[target].items():
            where = found.setdefault(name, {})
            where.setdefault(version, []).append(target)
    return {name: list(where.items()) for name, where in sorted(found.items()) if len(where) > 1}


def one_after_another(items, work):
    """unify's default `each`: (item, work(item)) for each item, in order, here."""
    return ((item, work(item)) for item in items)


def unify(results, targets, attempt, diagnose, step=print, precheck=None, each=one_after_another, precheck_many=None):
    """Resolve every target again with one shared version of each package the targets disagree on.

    results: {target: pip-compile output} of the independent resolutions. attempt(target, {name: version}, text):
    that target's pip-compile output when started from `text`'s pins with the given shared versions (raises
    Unresolvable when pip-compile fails outright). diagnose(target, name, version, cause): why that version
    cannot be used there. precheck(target, name, version): why that version alone cannot install there
    (Requires-Python, no fitting wheel) or None; it is far cheaper than a resolution, so a version it rules out
    never costs a round of pip-compile, and a split that stays (every freeze meets it again) costs no round at all.
    each(items, work): (item, work(item)) for every item, in their order (targets.compile_all runs them side by
    side, parallel.in_order); the targets of a round, and the packages whose candidates are prechecked, are
    independent of each other, so the result is the same either way. precheck_many(target, [(name, version)]):
    {(name, version): precheck's answer} for several at once (one pip process for a target's first candidates of a
    round, where asking each costs one); the answers are the same, so is the result.
    Returns (results, {name: [reasons]}) for the packages that still differ.
    """
    results = dict(results)
    ruled_out = {}  # name -> {version: reason}
    checked = {}  # (target, name, version) -> precheck's answer, asked once

    def installable(name, version, per_target):
        for target in by_python(targets):
            if precheck is None or per_target[target].get(name, version) == version:
                continue  # it chose that version (or needs no such package): nothing to check
            if (target, name, version) not in checked:
                checked[target, name, version] = precheck(target, name, version)
            reason = checked[target, name, version]
            if reason:
                ruled_out.setdefault(name, {})[version] = reason
                return False
        return True

    for _ in range(MAX_ROUNDS):
        per_target = {target: versions(results[target]) for target in targets}
        disagreeing = spread(per_target, targets)
        for name in disagreeing:
            ruled_out.setdefault(name, {})  # each package's search below touches only its own entries
        if precheck is not None and precheck_many is not None:
            asks = first_asks(disagreeing, ruled_out, per_target, targets, checked)
            for target, answers in each(list(asks), lambda target: precheck_many(target, asks[target])):
                checked.update(((target, name, version), reason) for (name, version), reason in answers.items())

        def candidate(name):
            for version, _ in disagreeing[name]:
                if version not in ruled_out[name] and installable(name, version, per_target):
                    return version
            return None

        proposal = {name: version for name, version in each(list(disagreeing), candidate) if version is not None}
        if not proposal:
            break
        step("one version for every target: trying "
             + ", ".join(f"{name}=={version}" for name, version in sorted(proposal.items())))
        attempts, failures = {}, {}
        moving = []
        for target in by_python(targets):
            mine = per_target[target]
            if all(mine.get(name, version) == version for name, version in proposal.items()):
                attempts[target] = results[target]  # already holds every shared version: it would not move
            else:
                moving.append(target)

        def one(target):
            try:
                return attempt(target, proposal, results[target]), None
            except Unresolvable as exc:
                return None, exc

        for target, (text, failed) in each(moving, one):
            if failed is not None:
                failures[target] = culprits_alone(target, proposal, results[target], attempt, str(failed))
                continue
            attempts[target] = text
            got = versions(text)
            # A shared version pip-compile dropped is one this target cannot take; a package the target no
            # longer needs at all is not a disagreement.
            missed = {name: None for name, version in proposal.items() if got.get(name, version) != version}
            if missed:
                failures[target] = missed
        if not failures:
            results = {target: attempts[target] for target in targets}
            continue
        for target in by_python(failures):
            missed = failures[target]
            for name, cause in missed.items():
                known = ruled_out.setdefault(name, {})
                if proposal[name] not in known:  # one reason is enough: the first target that cannot take it
                    known[proposal[name]] = diagnose(target, name, proposal[name], cause)
    per_target = {target: versions(results[target]) for target in targets}
    reasons = {name: sorted(ruled_out.get(name, {}).values()) for name in spread(per_target, targets)}
    return results, reasons


def first_asks(disagreeing, ruled_out, per_target, targets, checked):
    """{target: [(name, version)]}: the prechecks each package's first candidate not yet ruled out needs, per target
    that chose another version, not asked before."""
    asks = {}
    for name, choices in disagreeing.items():
        version = next((version for version, _ in choices if version not in ruled_out[name]), None)
        for target in by_python(targets) if version is not None else ():
            if per_target[target].get(name, version) != version and (target, name, version) not in checked:
                asks.setdefault(target, []).append((name, version))
    return asks


def culprits_alone(target, proposal, text, attempt, cause):
    """{name: cause} of the shared versions that fail on `target` one at a time (pip-compile failed with all).

    When each works alone, only their combination fails there: all of them are ruled out for this round's
    candidates, so that the next round moves on rather than repeating itself.
    """
    missed = {}
    for name, version in sorted(proposal.items()):
        try:
            got = versions(attempt(target, {name: version}, text))
        except Unresolvable as exc:
            missed[name] = str(exc)
            continue
        if got.get(name, version) != version:
            missed[name] = None
    return missed or {name: f"not together with {', '.join(sorted(set(proposal) - {name}))}: {cause}"
                      for name in proposal}


def reason_from_download(output, name, version, target):
    """Why `pip download --no-deps name==version` under Python `target` failed, from pip's own output;
    None when it did not say (then the version installs there, and only the rest of the lock excludes it)."""
    ignored = re.search(r"require a different python version: (.*)", output)
    if ignored:
        for part in ignored.group(1).split("; "):
            found, _, requires = part.partition(" Requires-Python ")
            if found.strip() == version:
                return f"{name} {version} requires Python {requires.strip()}, not {target}"
    if "Could not find a version that satisfies" in output or "No matching distribution" in output:
        return f"{name} {version} has no wheel for Python {target}"
    return None


def seed_lines(text, proposal):
    """The pins pip-compile starts from: this target's own, with the shared versions in place of its choices."""
    mine = versions(text)
    mine.update(proposal)
    return [f"{name}=={version}" for name, version in sorted(mine.items())]


def splits(lock_text):
    """{name: "5.2.19 (Python 3.10 3.11), 6.1.3 (Python 3.12 3.13)"} for each package of the lock with more
    than one version across its targets."""
    targets = platforms.lock_targets(lock_text)
    pins, _ = lockfile.parse(lock_text)
    per_target = {target: {pin.name: pin.version for pin in pins if pin.applies_to(target)} for target in targets}
    return {name: ", ".join(f"{version} ({platforms.label(used)})" for version, used in choices)
            for name, choices in spread(per_target, targets).items()}


def split_lines(lock_text, reasons=None):
    """One line per package with more than one version across the lock's targets: versions, targets, why.

    reasons: {name: [why]} from unify; None when the freeze did not try (RESOLUTION=newest).
    """
    lines = []
    for name, where in splits(lock_text).items():
        why = (reasons or {}).get(name) or [NEWEST_REASON if reasons is None else "no single version was tried"]
        lines.append(f"{name} {where}: {'; '.join(why)}")
    return lines


def direct_split_warnings(root):
    """`make check`'s warnings: a package named in requirements.in with more than one version across targets.

    Not a problem (the lock installs on every target), but the application would run another release of its
    own dependency on another Python: say so on every check, not only in the freeze report that made it.
    """
    try:
        lock_text = (root / "requirements.txt").read_text(encoding="utf-8")
        wanted_text = (root / "requirements.in").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []  # find_problems reports missing and undecodable files
    named = set()
    for line in lockfile.requirement_lines(wanted_text):
        try:
            named.add(canonicalize_name(Requirement(line).name))
        except InvalidRequirement:
            continue  # an option line (-c, -r) or one find_problems reports
    return [f"{name} (named in requirements.in) has more than one version across targets: {where}; the freeze "
            "report says why no single version fits them all (RESOLUTION=newest never tries)"
            for name, where in splits(lock_text).items() if name in named]
