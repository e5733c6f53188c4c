"""A compiled seccomp program as the runtime loads it: its seccomp(2) flags, its memfd for
pyoci-exec, and `CompiledFilter`, which loads it without libseccomp.

Why apart from seccomp.py (libseccomp's translation) and seccompcache.py (the cache): both
hand programs over in this form, and the cache builds on the translation, so this sits below
both.
"""

from __future__ import annotations

import os

# seccomp(2) filter flags (linux/seccomp.h) by the names config-linux.md uses.
KERNEL_FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": 1,
    "SECCOMP_FILTER_FLAG_LOG": 2,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
}


def flags_of(raw: dict) -> int:
    """`linux.seccomp.flags` as seccomp(2) flag bits (a name with no kernel bit adds none)."""
    return sum(KERNEL_FLAGS.get(f, 0) for f in raw.get("flags") or [])


def memfd_of(program: bytes) -> int:
    """The program in a close-on-exec memfd, for pyoci-exec to read and load."""
    fd = os.memfd_create("pyoci-seccomp", os.MFD_CLOEXEC)
    try:
        os.write(fd, program)
        os.lseek(fd, 0, os.SEEK_SET)
    except OSError:
        os.close(fd)
        raise
    return fd


class CompiledFilter:
    """A compiled program and its flags: what `SeccompPlan` offers, without libseccomp."""

    uses_notify = False

    def __init__(self, program: bytes, flags: int) -> None:
        self.program = program
        self.flags = flags

    def load(self, notify_sock_fd: int = -1, state: dict | None = None) -> None:
        from pyoci.errors import PyociError
        from pyoci.linux import sysbind

        try:
            sysbind.seccomp_load(self.program, self.flags)
        except OSError as err:
            raise PyociError(f"linux.seccomp: loading the filter: {err.strerror.lower()}") from None

    def export_for_helper(self) -> tuple[int, int]:
        return memfd_of(self.program), self.flags
