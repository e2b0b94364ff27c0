"""The cooling-off of `make freeze*`: only releases uploaded at least COOLDOWN_DAYS ago are taken.

Most malicious releases are found and yanked within days, so a freeze waits. The cutoff is computed once per
freeze run (an ISO datetime, to the second, in UTC) and every step that asks the index for versions gets the
same one: pip-compile (main lock and build lock), pip download, the seed pip and virtualenv.py's pins. pip 26.3
and pip-tools 7.6.2 both take it as `--uploaded-prior-to`. pip refuses to filter when the index does not say
when a file was uploaded; that failure becomes one ERROR naming the cause and `COOLDOWN_DAYS=0` as the way on.
Files pip reads from a local directory (file:// indexes, find-links) have no upload time and are not filtered.

The cutoff never moves. A pin already in the lock whose files were uploaded after it (locked with
COOLDOWN_DAYS=0) is kept the way pip-compile keeps every pin, seeded in its output file; its files from
requirements/ are offered with --find-links (keep(), kept_args()), which pip does not filter, so the pin stays
and nothing else uploaded after the cutoff is taken.
"""

import argparse
import datetime
import re

OPTION = "--uploaded-prior-to"
NO_UPLOAD_TIMES = "does not provide upload-time metadata"

_cutoff = None  # this run's cutoff (ISO text) or None: fixed once by fix(), read by every index-reaching step
_kept = None  # a directory of locked files uploaded after the cutoff, or None: set by keep(), read by pip-compile


def cutoff_for(days, now=None):
    """The ISO datetime (UTC, seconds) `days` before `now`; None when days is 0 (no cooling-off)."""
    if not days:
        return None
    now = now or datetime.datetime.now(datetime.timezone.utc)
    moment = (now - datetime.timedelta(days=days)).astimezone(datetime.timezone.utc).replace(microsecond=0)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def fix(cutoff):
    """Make `cutoff` (ISO text or None) the one every pip and pip-compile of this process is given."""
    global _cutoff
    _cutoff = cutoff or None
    return _cutoff


def keep(directory):
    """Offer the files in `directory` (locked artifacts the cutoff would hide) to every pip-compile of this run."""
    global _kept
    _kept = directory or None
    return _kept


def kept_args():
    """pip-compile's options offering the kept files: a directory has no upload times, so pip takes them as they are."""
    return ["--find-links", str(_kept)] if _kept else []


def current():
    return _cutoff


def parse(cutoff):
    """The cutoff as an aware datetime (None stays None)."""
    if not cutoff:
        return None
    return datetime.datetime.fromisoformat(cutoff.replace("Z", "+00:00"))


def pip_args():
    """The options that apply the run's cutoff: the same spelling for pip and pip-compile."""
    return [OPTION, _cutoff] if _cutoff else []


def days_arg(text):
    """argparse type for --cooldown-days: a whole number of days, 0 or more."""
    try:
        days = int(text)
    except ValueError:
        days = -1
    if days < 0:
        raise argparse.ArgumentTypeError(f"COOLDOWN_DAYS must be a whole number of days (0 turns it off), not {text!r}")
    return days


def missing_upload_times(output):
    """True when pip's output says the index gave no upload time for a file it needed to filter."""
    return NO_UPLOAD_TIMES in (output or "")


def missing_upload_times_message(output):
    """The one-line cause and fix for an index that does not serve upload times."""
    detail = next((line.strip() for line in (output or "").splitlines() if NO_UPLOAD_TIMES in line), "")
    detail = detail.partition("ERROR:")[2].strip() or detail
    detail = re.sub(r"://[^/@\s]*@", "://", detail)  # pip quotes the index URL: never its credentials
    return (f"the cooling-off (COOLDOWN_DAYS, releases uploaded before {_cutoff or 'the cutoff'}) needs the "
            f"upload time of every file, and the index does not serve it (pip: {detail.rstrip('.')}). Ask whoever "
            "runs the index to serve PEP 691 JSON with upload-time, or freeze without the cooling-off: "
            "`make freeze COOLDOWN_DAYS=0` (or `make freeze-upgrade COOLDOWN_DAYS=0`).")
