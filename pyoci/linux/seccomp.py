"""linux.seccomp → a libseccomp filter (through pyseccomp), loaded just before execve.

Why libseccomp: the BPF a profile compiles to (multiple architectures, argument comparisons,
syscall-number translation) is exactly what libseccomp maintains; pyseccomp is a thin ctypes
binding over Debian's libseccomp2. It is imported (~5 ms, by pyoci.linux.seccomplib) only
when a profile is not in pyoci.linux.seccompcache yet, and the filter is built in the parent.

Unknown syscall names are skipped, as runc does (profiles list syscalls of newer kernels);
unknown actions, architectures, operators and flags are errors naming their JSON path.
"""

from __future__ import annotations

import errno as errno_names
import os

from pyoci import OCI_VERSION
from pyoci.errors import PyociError
from pyoci.linux import seccomplib

ps = seccomplib.load()

ARCHES = {
    "SCMP_ARCH_X86": ps.Arch.X86,
    "SCMP_ARCH_X86_64": ps.Arch.X86_64,
    "SCMP_ARCH_X32": ps.Arch.X32,
    "SCMP_ARCH_ARM": ps.Arch.ARM,
    "SCMP_ARCH_AARCH64": ps.Arch.AARCH64,
    "SCMP_ARCH_MIPS": ps.Arch.MIPS,
    "SCMP_ARCH_MIPS64": ps.Arch.MIPS64,
    "SCMP_ARCH_MIPS64N32": ps.Arch.MIPS64N32,
    "SCMP_ARCH_MIPSEL": ps.Arch.MIPSEL,
    "SCMP_ARCH_MIPSEL64": ps.Arch.MIPSEL64,
    "SCMP_ARCH_MIPSEL64N32": ps.Arch.MIPSEL64N32,
    "SCMP_ARCH_PPC": ps.Arch.PPC,
    "SCMP_ARCH_PPC64": ps.Arch.PPC64,
    "SCMP_ARCH_PPC64LE": ps.Arch.PPC64LE,
    "SCMP_ARCH_S390": ps.Arch.S390,
    "SCMP_ARCH_S390X": ps.Arch.S390X,
    "SCMP_ARCH_PARISC": ps.Arch.PARISC,
    "SCMP_ARCH_PARISC64": ps.Arch.PARISC64,
    "SCMP_ARCH_RISCV64": ps.Arch.RISCV64,
}
OPS = {
    "SCMP_CMP_NE": ps.NE,
    "SCMP_CMP_LT": ps.LT,
    "SCMP_CMP_LE": ps.LE,
    "SCMP_CMP_EQ": ps.EQ,
    "SCMP_CMP_GE": ps.GE,
    "SCMP_CMP_GT": ps.GT,
    "SCMP_CMP_MASKED_EQ": ps.MASKED_EQ,
}
FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": ps.Attr.CTL_TSYNC,
    "SECCOMP_FILTER_FLAG_LOG": ps.Attr.CTL_LOG,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": ps.Attr.CTL_SSB,
}
ACTION_NAMES = (
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
)


def _action(name: object, errno_ret: object, default_errno: int, field: str) -> int:
    if name not in ACTION_NAMES:
        raise PyociError(f"{field}: unknown seccomp action {name!r}")
    if errno_ret is not None and name not in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"):
        raise PyociError(f"{field}: errnoRet is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE")
    number = default_errno if errno_ret is None else errno_ret
    if not isinstance(number, int) or isinstance(number, bool) or not 0 <= number <= 4095:
        raise PyociError(f"{field}: errnoRet must be an integer in [0, 4095]")
    return {
        "SCMP_ACT_KILL": ps.KILL_THREAD,
        "SCMP_ACT_KILL_THREAD": ps.KILL_THREAD,
        "SCMP_ACT_KILL_PROCESS": ps.KILL_PROCESS,
        "SCMP_ACT_TRAP": ps.TRAP,
        "SCMP_ACT_ERRNO": ps.ERRNO(number),
        "SCMP_ACT_TRACE": ps.TRACE(number),
        "SCMP_ACT_ALLOW": ps.ALLOW,
        "SCMP_ACT_LOG": ps.LOG,
        "SCMP_ACT_NOTIFY": ps.NOTIFY,
    }[name]


def _args(raw: list, field: str) -> list[ps.Arg]:
    out = []
    for i, arg in enumerate(raw):
        p = f"{field}[{i}]"
        if not isinstance(arg, dict):
            raise PyociError(f"{p}: must be an object")
        index, op = arg.get("index"), arg.get("op")
        if not isinstance(index, int) or not 0 <= index <= 5:
            raise PyociError(f"{p}.index: must be an integer in [0, 5]")
        if op not in OPS:
            raise PyociError(f"{p}.op: unknown operator {op!r}")
        out.append(ps.Arg(index, OPS[op], int(arg.get("value", 0)), int(arg.get("valueTwo", 0))))
    return out


class SeccompPlan:
    """The built filter plus what loading it needs (notify listener)."""

    def __init__(self, raw: dict, log=None) -> None:
        field = "linux.seccomp"
        default_errno = raw.get("defaultErrnoRet", errno_names.EPERM)
        default = _action(raw.get("defaultAction"), None, default_errno, f"{field}.defaultAction")
        self.filter = ps.SyscallFilter(default)
        # libseccomp sets no_new_privs on load by default; the config decides that, not us.
        self.filter.set_attr(ps.Attr.CTL_NNP, 0)
        self.skipped: list[str] = []
        self.uses_notify = False
        try:
            for i, arch in enumerate(raw.get("architectures") or []):
                if arch not in ARCHES:
                    raise PyociError(f"{field}.architectures[{i}]: unknown architecture {arch!r}")
                try:
                    self.filter.add_arch(ARCHES[arch])
                except OSError as err:
                    if err.errno != errno_names.EEXIST:  # the native arch is already there
                        raise
            self.raw_flags = list(raw.get("flags") or [])
            for i, flag in enumerate(self.raw_flags):
                if flag not in FLAGS:
                    raise PyociError(f"{field}.flags[{i}]: unknown or unsupported flag {flag!r}")
                self.filter.set_attr(FLAGS[flag], 1)
            for i, rule in enumerate(raw.get("syscalls") or []):
                self._add_rule(rule, f"{field}.syscalls[{i}]", default_errno, default)
        except OSError as err:
            raise PyociError(f"{field}: {err.strerror or err}", err.errno or 0) from None
        self.listener_path = raw.get("listenerPath")
        self.listener_metadata = raw.get("listenerMetadata", "")
        if self.uses_notify and not self.listener_path:
            raise PyociError(f"{field}.listenerPath: SCMP_ACT_NOTIFY needs a listener path")
        if log is not None and self.skipped:
            log.debug(f"seccomp: skipped unknown syscalls: {', '.join(self.skipped)}")

    def _add_rule(self, rule: dict, field: str, default_errno: int, default: int) -> None:
        if not isinstance(rule, dict):
            raise PyociError(f"{field}: must be an object")
        action = _action(rule.get("action"), rule.get("errnoRet"), default_errno, f"{field}.action")
        if rule.get("action") == "SCMP_ACT_NOTIFY":
            self.uses_notify = True
        if action == default:
            return  # libseccomp refuses a rule that repeats the default action
        args = _args(rule.get("args") or [], f"{field}.args")
        indexes = [a._arg for a in args]
        # Several conditions on one argument cannot be ANDed by libseccomp: as runc does, they
        # become one rule each (an OR); distinct arguments stay one rule (an AND).
        groups = [[a] for a in args] if len(set(indexes)) != len(indexes) else [args]
        for name in rule.get("names") or []:
            number = ps.resolve_syscall(ps.Arch.NATIVE, name)
            if number == -1:  # __NR_SCMP_ERROR: unknown here (other negatives are pseudo-numbers)
                self.skipped.append(name)
                continue
            for group in groups:
                try:
                    self.filter.add_rule(action, number, *group)
                except OSError as err:
                    raise PyociError(f"{field}: rule for {name}: {err.strerror or err}") from None

    def export_bytes(self) -> bytes:
        """The compiled program, libseccomp's own BPF: exactly what `load` would install."""
        fd = os.memfd_create("pyoci-seccomp", os.MFD_CLOEXEC)
        try:
            with os.fdopen(os.dup(fd), "wb", buffering=0) as f:
                self.filter.export_bpf(f)
            size = os.lseek(fd, 0, os.SEEK_END)
            return os.pread(fd, size, 0)
        except OSError as err:
            raise PyociError(
                f"linux.seccomp: exporting the filter: {err.strerror or err}"
            ) from None
        finally:
            os.close(fd)

    def export_for_helper(self) -> tuple[int, int]:
        """The compiled program in a memfd and its seccomp(2) filter flags, for pyoci-exec to
        load as the very last step before execve (no_new_privs without a listener). The fd
        is close-on-exec: the caller makes it inheritable for the helper."""
        from pyoci.linux.seccompfilter import flags_of, memfd_of

        return memfd_of(self.export_bytes()), flags_of({"flags": self.raw_flags})

    def load(self, notify_sock_fd: int = -1, state: dict | None = None) -> None:
        """Install the filter on this process (the last step before execve)."""
        try:
            self.filter.load()
        except OSError as err:
            raise PyociError(f"linux.seccomp: loading the filter: {err.strerror or err}") from None
        if self.uses_notify and notify_sock_fd >= 0:
            self._send_notify_fd(notify_sock_fd, state or {})

    def _send_notify_fd(self, sock_fd: int, state: dict) -> None:
        """Hand the notify fd to the listener with runc's container-process-state payload."""
        from pyoci import jsonfast
        from pyoci.linux.console import send_fd

        fd = ps._libseccomp.seccomp_notify_fd(self.filter._filter)  # noqa: SLF001
        if fd < 0:
            raise PyociError("linux.seccomp: no notify fd after loading the filter")
        payload = {
            "ociVersion": state.get("ociVersion", OCI_VERSION),
            "fds": ["seccompFd"],
            "pid": state.get("pid", os.getpid()),
            "metadata": self.listener_metadata,
            "state": state,
        }
        send_fd(sock_fd, fd, jsonfast.dumps(payload).encode())
        os.close(fd)
