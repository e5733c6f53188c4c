"""pyoci: an OCI container runtime written in Python.

The public API is small: `Container` (the lifecycle) with `CreateOptions` and `ExecOptions`,
`Spec` (a parsed config.json), `load_spec` and `PyociError`. Names resolve lazily (module
`__getattr__`), so `import pyoci` costs nothing a command does not use (nor a `__future__`
import: see `pyoci.entry`).
"""

__all__ = ["Container", "CreateOptions", "ExecOptions", "PyociError", "Spec", "load_spec", "run"]
__version__ = "0.1.0"  # what `pyoci --version` reports
# The runtime-spec version pyoci implements: what `state`, hooks, `features`, `spec` and
# `--version` report. The one definition; everything else imports it.
OCI_VERSION = "1.3.0"

_LAZY = {
    "Container": ("pyoci.container", "Container"),
    "run": ("pyoci.runner", "run"),
    "CreateOptions": ("pyoci.options", "CreateOptions"),
    "ExecOptions": ("pyoci.options", "ExecOptions"),
    "PyociError": ("pyoci.errors", "PyociError"),
    "Spec": ("pyoci.spec", "Spec"),
    "load_spec": ("pyoci.spec", "load"),
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        module_name, attr = _LAZY[name]
        value = getattr(importlib.import_module(module_name), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pyoci' has no attribute {name!r}")
