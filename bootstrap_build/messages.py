"""What a user reads: one ERROR line for an expected failure, `==>` lines for progress, a child's output indented."""

import sys


def error(message):
    print(f"ERROR: {message}", file=sys.stderr)
    sys.exit(1)


def step(message):
    print(f"==> {message}", flush=True)


def show_output(text):
    """A child's output on stderr, indented, so its own `ERROR:` lines (pip prints some) do not read as ours."""
    print("".join(f"    {line}\n" for line in text.rstrip().splitlines()), end="", file=sys.stderr)


def mb(size):
    return f"{size / 10**6:.0f} MB"
