"""pyseccomp, loaded without its library search.

pyseccomp asks `ctypes.util.find_library` for libc and libseccomp when it is imported. That
imports subprocess, pathlib and shutil and runs `ldconfig -p`: ~10 ms, two thirds of what
importing pyseccomp cost, paid by every create that compiles a seccomp profile (the first
container of a profile; later ones read the compiled program from pyoci.linux.seccompcache).
The dynamic loader finds both libraries by their SONAME itself, so pyseccomp is handed those
names while it loads. Where a SONAME does not load (another libc, another libseccomp major),
pyseccomp is imported again with the real search.
"""

from __future__ import annotations

import sys
from types import ModuleType

# What pyseccomp asks find_library for → the SONAME Debian's libc6 and libseccomp2 install.
SONAMES = {"c": "libc.so.6", "seccomp": "libseccomp.so.2"}


def load(sonames: dict[str, str] = SONAMES) -> ModuleType:
    """The pyseccomp module, imported once."""
    if "pyseccomp" in sys.modules or "ctypes.util" in sys.modules:
        import pyseccomp  # already there, or the real search costs nothing more

        return pyseccomp
    import ctypes

    shim = ModuleType("ctypes.util")
    shim.find_library = sonames.get  # type: ignore[attr-defined]
    sys.modules["ctypes.util"] = ctypes.util = shim  # type: ignore[attr-defined]
    try:
        import pyseccomp
    except OSError:  # a SONAME did not load; the import system dropped the half module
        pyseccomp = None
    finally:
        del sys.modules["ctypes.util"], ctypes.util
    if pyseccomp is None:
        import pyseccomp
    return pyseccomp
