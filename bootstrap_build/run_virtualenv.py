"""virtualenv.py's launcher, minus what bootstrap.py has done already (the version and payload checks): run by the
build's interpreter (`python -I -S -B run_virtualenv.py DIR... -- ARGS...`), never imported. DIRs are the payload's
wheel directories for this Python, unpacked; ARGS are virtualenv's."""

import gc
import sys


def main(argv):
    gc.disable()  # a short run that frees what it makes
    end = argv.index("--")
    sys.path[:0] = argv[:end]
    from virtualenv.__main__ import run_with_catch

    run_with_catch(argv[end + 1:])


if __name__ == "__main__":
    main(sys.argv[1:])
