"""The tracemalloc-viewer binary, installed by this package's wheel.

``python -m tracemalloc_viewer ARGS`` runs ``tracemalloc-viewer ARGS``.
"""

import os
import sys
import sysconfig

__all__ = ["find_viewer"]


def find_viewer() -> str:
    """Return the path of the ``tracemalloc-viewer`` binary this wheel installed.

    pip puts it in the scripts folder of the environment (or of the user
    scheme, with ``pip install --user``), not in the package.
    """
    name = "tracemalloc-viewer" + (".exe" if sys.platform == "win32" else "")
    folders = [sysconfig.get_path("scripts")]
    try:
        user_scheme = sysconfig.get_preferred_scheme("user")  # Python 3.10+
    except AttributeError:
        user_scheme = f"{os.name}_user"
    if user_scheme in sysconfig.get_scheme_names():
        folders.append(sysconfig.get_path("scripts", scheme=user_scheme))
    for folder in folders:
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(
        f"{name} is not installed in {' or '.join(folders)}; reinstall the tracemalloc-viewer package"
    )
