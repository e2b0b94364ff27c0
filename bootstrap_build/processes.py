"""Every child process of a build: the hermetic environment it runs in, started and waited for here, stopped
when we are interrupted, its output shown indented and its failure one ERROR line with the quoted command."""

import os

from bootstrap_build.messages import error, show_output


# Fixed, so nothing a build runs can stamp the time into what it writes (under it, py_compile and pip
# default to hash-based .pyc files); with checked-hash compilation, rebuilds are byte-identical.
SOURCE_DATE_EPOCH = "315532800"
AMBIENT_PREFIXES = ("PIP_", "VIRTUALENV_", "UV_", "PYTHON", "CONDA_", "PIPENV_", "PDM_", "POETRY_", "XDG_")
AMBIENT_NAMES = ("VIRTUAL_ENV", "__PYVENV_LAUNCHER__", "SETUPTOOLS_USE_DISTUTILS", "DISTUTILS_DEBUG")
# What a full disk or an exhausted quota raises, in this process or in a child's output.
NO_SPACE_ERRNOS = (28, 122)  # ENOSPC, EDQUOT
NO_SPACE_TEXTS = ("No space left on device", "Disk quota exceeded")


def stop_on_signals():
    """SIGTERM and SIGHUP (a CI cancel, a closed terminal, `timeout`) unwind like Ctrl-C: children are stopped
    and scratch removed before the lock is released."""
    import signal

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupt)


def hermetic_env(scratch):
    """The caller's environment minus everything that steers Python, pip or virtualenv.

    HOME and the XDG dirs point into a private scratch dir, so no user-level config is found;
    PIP_CONFIG_FILE=os.devnull makes pip skip every config file, the global ones included. TMPDIR too: what
    children leave in it when killed is removed with the scratch dir by the next run.
    """
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(AMBIENT_PREFIXES) and key not in AMBIENT_NAMES}
    tmp = os.path.join(scratch, "tmp")
    os.makedirs(tmp, exist_ok=True)
    env.update({
        "HOME": scratch,
        "TMPDIR": tmp,
        "XDG_CONFIG_HOME": os.path.join(scratch, "config"),
        "XDG_CACHE_HOME": os.path.join(scratch, "cache"),
        "XDG_DATA_HOME": os.path.join(scratch, "data"),
        "XDG_CONFIG_DIRS": os.path.join(scratch, "etc"),
        "PIP_CONFIG_FILE": os.devnull,
        "VIRTUALENV_CONFIG_FILE": os.devnull,
        "PYTHONNOUSERSITE": "1",
        "PYTHONHASHSEED": "0",
        "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH,
        "LC_ALL": "C.UTF-8",
    })
    return env


def start(argv, env):
    """Start argv in the background, its stdout and stderr captured together, for the caller to wait for."""
    import subprocess

    return subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace")


def spawn(argv, env):
    """Run argv to its end: (exit status, output). If we are interrupted meanwhile, it is stopped first, so
    nothing writes after we leave."""
    child = start(argv, env)
    try:
        stdout, _ = child.communicate()
    except BaseException:
        stop_children([child])
        raise
    return child.returncode, stdout or ""


def run(argv, env, what):
    """Run argv quietly; on failure show the quoted command and its output, then stop."""
    import shlex

    returncode, stdout = spawn(argv, env)
    if returncode != 0 and any(text in stdout for text in NO_SPACE_TEXTS):
        raise OSError(NO_SPACE_ERRNOS[0], NO_SPACE_TEXTS[0])  # main names the disk; the child's output adds nothing
    if returncode != 0:
        show_output(stdout)
        error(f"{what} failed (exit {returncode}): {shlex.join(argv)}. "
              "See the output above; the previous ve is untouched.")
    return stdout


def stop_children(children):
    """Stop what is still running (an error or an interrupt left it), so nothing writes after we leave."""
    for child in children:
        if child.poll() is None:
            child.terminate()
    for child in children:
        try:
            child.wait(timeout=10)
        except BaseException:
            child.kill()
            child.wait()
