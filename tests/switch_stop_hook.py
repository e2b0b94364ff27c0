"""Installed by tests/test_freeze_faults.py into a test checkout's tools' env (a .pth line imports it): an audit hook
that stops the process (SIGSTOP) right before each file move of journal.complete_switch, after appending
"<pid> <move number> <path>" to a log, so the test can kill it at that exact point. The test hook lives here, in
the tests; bootstrap.py has none. STOP_IN_SWITCH="<move number or all>:<log file>" turns it on. A second hook
raises KeyboardInterrupt (what Ctrl-C raises) at a chosen file's opening: INTERRUPT_AT_OPEN="<file name>".

bootstrap.py runs with -S (no .pth file is read), and it is what completes an interrupted switch before any tool
runs; so `make PYTHON=<a script running this file with make's arguments>` (see `main`) gives it the hooks too.
"""

import os
import signal
import sys

VARIABLE = "STOP_IN_SWITCH"


def before_a_move(event, args):
    if event not in ("os.rename", "os.remove"):  # os.replace and os.unlink raise these
        return
    wanted = os.environ.get(VARIABLE)
    frame = sys._getframe(1) if wanted else None
    while frame is not None and frame.f_code.co_name != "complete_switch":
        frame = frame.f_back
    if frame is None or "number" not in frame.f_locals:
        return
    number, move = frame.f_locals["number"], frame.f_locals["move"]
    moved = os.fsdecode(args[1] if event == "os.rename" else args[0])
    if not moved.endswith("/" + move["path"]):  # the journal's own rename after the last move, say
        return
    when, _, log = wanted.partition(":")
    if when in ("all", str(number)):
        with open(log, "a") as handle:
            handle.write(f"{os.getpid()} {number} {move['path']}\n")
        os.kill(os.getpid(), signal.SIGSTOP)


INTERRUPT_AT = "INTERRUPT_AT_OPEN"


def interrupt_at_open(event, args):
    """INTERRUPT_AT_OPEN=<file name>: Ctrl-C (KeyboardInterrupt) when the process opens that file for writing."""
    if event == "open" and os.environ.get(INTERRUPT_AT) and isinstance(args[0], (str, bytes, os.PathLike)):
        if os.fsdecode(args[0]).endswith("/" + os.environ[INTERRUPT_AT]) and "w" in (args[1] or ""):
            raise KeyboardInterrupt


sys.addaudithook(before_a_move)
sys.addaudithook(interrupt_at_open)


def main(argv):
    """Run `python FLAGS -c CODE ARGS` (make's BOOTSTRAP_RUN) in this process, with the hooks above added."""
    at = argv.index("-c")
    sys.argv = ["-c", *argv[at + 2:]]
    sys.path[0] = ""  # what -c puts first, instead of this file's directory
    exec(compile(argv[at + 1], "<string>", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})


if __name__ == "__main__":
    main(sys.argv[1:])
