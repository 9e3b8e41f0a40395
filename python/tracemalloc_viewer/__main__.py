"""``python -m tracemalloc_viewer ARGS``: runs ``tracemalloc-viewer ARGS``."""

import os
import subprocess
import sys

from tracemalloc_viewer import find_viewer


def main() -> None:
    viewer = find_viewer()
    args = [viewer, *sys.argv[1:]]
    if sys.platform == "win32":
        # Windows has no exec that replaces the process.
        sys.exit(subprocess.call(args))
    os.execv(viewer, args)


if __name__ == "__main__":
    main()
