"""pyoci.linux.seccomplib: pyseccomp loaded by SONAME, without ctypes.util's library search
(which runs `ldconfig -p` in a subprocess), and with that search when a SONAME does not load.
Each case runs in a fresh interpreter: what is measured is what a create imports and runs."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
from pyoci.linux import seccomplib
sonames = json.loads(sys.argv[1]) or seccomplib.SONAMES
ps = seccomplib.load(sonames)
f = ps.SyscallFilter(ps.ALLOW)
f.add_rule(ps.ERRNO(1), "getpid")
print(json.dumps({
    "library": ps._libseccomp._name,
    "searched": "ctypes.util" in sys.modules,
    "subprocess": "subprocess" in sys.modules,
    "getpid": ps.resolve_syscall(ps.Arch.NATIVE, "getpid"),
}))
"""


def _probe(sonames: dict) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(sonames)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def test_loads_libseccomp_by_soname_without_the_library_search():
    seen = _probe({})
    assert seen["library"] == "libseccomp.so.2"
    assert not seen["searched"], "ctypes.util was imported: ldconfig ran"
    assert not seen["subprocess"]
    assert seen["getpid"] > 0


def test_a_soname_that_does_not_load_falls_back_to_the_real_search():
    seen = _probe({"c": "libc.so.6", "seccomp": "libseccomp.so.999"})
    assert seen["searched"], "the fallback must use ctypes.util.find_library"
    assert "libseccomp" in seen["library"] and seen["library"] != "libseccomp.so.999"
    assert seen["getpid"] > 0


def test_after_loading_ctypes_util_is_the_real_module():
    code = (
        "from pyoci.linux import seccomplib; seccomplib.load(); "
        "import ctypes, ctypes.util; print(ctypes.util.__file__, ctypes.util is sys.modules["
        "'ctypes.util'])"
    )
    code = "import sys; " + code
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    path, same = out.stdout.split()
    assert path.endswith("ctypes/util.py") and same == "True", out.stdout
