"""The one place the maintainer tools start subprocesses, with a hermetic environment."""

import re
import shlex
import subprocess
import sys

from bootstrap_build import processes
from bootstrap_tools import cooldown, parallel


class ToolError(Exception):
    """An expected failure: its message is one line with the cause and the fix.

    `output` is what a failed command printed (None when no command failed), for callers that summarize it.
    """

    def __init__(self, message, output=None):
        super().__init__(message)
        self.output = output


def hermetic_env(home, extra=None):
    """bootstrap.py's hermetic environment (nothing ambient steers pip, virtualenv or Python; HOME, TMPDIR and
    the XDG dirs inside `home`), for tools that may prompt or check pip's version, plus `extra`."""
    env = processes.hermetic_env(str(home))
    env.update({"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"})
    env.update(extra or {})
    return env


def index_args(index_url):
    """pip's (and pip-compile's) options for asking the index: `index_url` (none for pip's own default) and the
    run's cooling-off cutoff (bootstrap_tools/cooldown.py), so every step that picks versions gets the same one."""
    return (["--index-url", index_url] if index_url else []) + cooldown.pip_args()


def run(argv, *, env=None, cwd=None, capture=True):
    """Run argv (a list, never a shell string); on failure raise ToolError quoting it and its output."""
    argv = [str(arg) for arg in argv]
    parallel.check_stopped()  # a job whose result is no longer wanted starts nothing more
    try:
        child = subprocess.Popen(argv, env=env, cwd=cwd, text=True, stdout=subprocess.PIPE if capture else None,
                                 stderr=subprocess.STDOUT if capture else None)
    except OSError as exc:
        raise ToolError(f"cannot run {shlex.join(argv)}: {exc.strerror}") from None
    parallel.started(child)  # so a stopped job's child is terminated
    try:
        stdout, _ = child.communicate()
    except BaseException:
        child.kill()
        child.wait()
        raise
    finally:
        parallel.finished(child)
    result = subprocess.CompletedProcess(argv, child.returncode, stdout)
    if result.returncode != 0:
        if cooldown.missing_upload_times(result.stdout):
            # Not a failure of this step: the index cannot serve the cooling-off at all (output=None: final).
            raise ToolError(cooldown.missing_upload_times_message(result.stdout))
        # Indented, so the tool's own `ERROR:` line stays the only one that starts a line.
        output = "".join(f"\n    {line}" for line in (result.stdout or "").rstrip().splitlines())
        detail = output
        raise ToolError(f"command failed (exit {result.returncode}): {shlex.join(argv)}{detail}",
                        output=result.stdout or "")
    return result.stdout or ""


def run_step(argv, what, fix, index=None, **kwargs):
    """run(argv); if it fails, show its output (tracebacks folded away) and raise one line: what, why, the fix.

    `index` (the INDEX_URL of a step that reads the index, "" for pip's default) turns pip's hash mismatch into
    a line that blames the index and names the file, not the maintainer's files.
    """
    try:
        return run(argv, **kwargs)
    except ToolError as exc:
        raise step_failure(exc, what, fix, index) from None


def step_failure(exc, what, fix, index=None):
    """The one-line ToolError for a failed step (run_step's, for callers that inspect the failure first)."""
    if exc.output is None:
        return exc
    if index is not None and unreachable(exc.output):
        return ToolError(f"the index ({index_name(index)}) cannot be reached from here ({unreachable(exc.output)}): "
                         "check the network or INDEX_URL, then run `make freeze` again.", output=exc.output)
    if index is not None and index_mismatch(exc.output, index):
        return ToolError(index_mismatch(exc.output, index), output=exc.output)
    shown = without_tracebacks(exc.output)
    if shown:
        # On stderr, indented: the tool's own `ERROR:` line stays the only one that starts a line.
        print(f"    {what} failed; its output (tracebacks left out):", file=sys.stderr, flush=True)
        print("".join(f"      {line}\n" for line in shown), end="", file=sys.stderr, flush=True)
    return ToolError(f"{what} failed: {failure_cause(shown)}; {fix}", output=exc.output)


def unreachable(output):
    """pip's last line saying it could not connect to the index, or None."""
    signs = ("NewConnectionError", "Failed to establish", "Max retries exceeded", "Could not fetch URL",
             "Temporary failure in name resolution")
    lines = [line.strip() for line in (output or "").splitlines() if any(sign in line for sign in signs)]
    return lines[-1] if lines else None


def index_name(index_url):
    """The index as a message names it: its URL without credentials, or pip's default."""
    if not index_url:
        return "pip's default index"
    scheme, _, rest = index_url.partition("://")
    return f"{scheme}://{rest.rpartition('@')[2]}" if rest else index_url


def index_mismatch(output, index_url):
    """One line for pip's `Expected sha256 X / Got Y` about a file from the index, or None."""
    match = re.search(r"^\s*(\S+) from (\S+?)(?: \(from [^\n]*\))?:\s*\n\s*Expected sha256 ([0-9a-f]{64})\s*\n"
                      r"\s*Got\s+([0-9a-f]{64})", output, flags=re.MULTILINE)
    if not match:
        return None
    requirement, url, expected, got = match.groups()
    filename = url.split("#", 1)[0].rstrip("/").rpartition("/")[2]
    return (f"the index {index_name(index_url)} served {filename} (for {requirement}) with sha256 {got}, but "
            f"{expected} was expected (what the index advertises for it, or what the lock pins): a corrupted or "
            "replaced file on the index or a broken mirror, not a problem of requirements.in. Report it to whoever "
            "runs the index or use another INDEX_URL, then run `make freeze` again.")


def without_tracebacks(output):
    """The lines of `output` with each Python traceback reduced to its final `Error: message` line."""
    lines, in_traceback = [], False
    for line in output.rstrip().splitlines():
        if line.lstrip().startswith("Traceback (most recent call last):"):
            in_traceback = True
            continue
        if in_traceback and (line.startswith(" ") or not line.strip()):
            continue
        in_traceback = False
        if line.startswith(("The above exception was", "During handling of the above exception")):
            continue
        lines.append(line)
    return lines


def failure_cause(lines):
    """The most telling line of a failed pip or tool's output: its last ERROR (not pip's bare `Exception:`)."""
    stripped = [line.strip() for line in lines if line.strip()]
    errors = [line[len("ERROR:"):].strip() for line in stripped if line.startswith("ERROR:")]
    errors = [error for error in errors if error != "Exception:"]
    if errors:
        return errors[-1].rstrip(".")
    return stripped[-1].rstrip(".") if stripped else "no output"


def fail(message):
    """Print one ERROR line and exit 1: the way every tool reports an expected failure."""
    print(f"ERROR: {message}", file=sys.stderr)
    raise SystemExit(1)
