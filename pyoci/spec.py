"""config.json → a typed `Spec`, checked field by field with path-precise errors.

Why hand-written checks and not jsonschema: the runtime parses the config on every `create`
and `run`, and jsonschema costs ~120 ms to import; `pyoci validate` runs the full schema. The
model mirrors config.json one to one (no second "internal config" to lose fields in, the
lesson of runc's specconv): attribute names are the spec's, in snake_case.

Plain classes with __slots__ rather than dataclasses: dataclasses pulls in `inspect` (~10 ms).
"""

from __future__ import annotations

import os

from pyoci import rules, shapes
from pyoci.errors import PyociError

# The spec's namespace types → the name of each one's file in /proc/PID/ns: the one table of
# namespace names (validate reads it backwards, pyoci.linux.namespaces adds the clone flags).
NS_PROC_NAME = {
    "pid": "pid",
    "network": "net",
    "mount": "mnt",
    "ipc": "ipc",
    "uts": "uts",
    "user": "user",
    "cgroup": "cgroup",
    "time": "time",
}
NAMESPACE_TYPES = tuple(NS_PROC_NAME)

# Capability names known to this kernel's headers (capability.h, up to CAP_CHECKPOINT_RESTORE).
CAPABILITIES = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
]
CAP_NUMBER = {name: number for number, name in enumerate(CAPABILITIES)}
CAP_SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")

RLIMITS = {
    "RLIMIT_CPU": 0,
    "RLIMIT_FSIZE": 1,
    "RLIMIT_DATA": 2,
    "RLIMIT_STACK": 3,
    "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5,
    "RLIMIT_NPROC": 6,
    "RLIMIT_NOFILE": 7,
    "RLIMIT_MEMLOCK": 8,
    "RLIMIT_AS": 9,
    "RLIMIT_LOCKS": 10,
    "RLIMIT_SIGPENDING": 11,
    "RLIMIT_MSGQUEUE": 12,
    "RLIMIT_NICE": 13,
    "RLIMIT_RTPRIO": 14,
    "RLIMIT_RTTIME": 15,
}

ROOTFS_PROPAGATIONS = (
    "private",
    "shared",
    "slave",
    "unbindable",
    "rprivate",
    "rshared",
    "rslave",
    "runbindable",
)
HOOK_NAMES = (
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
)


# --- typed accessors ---------------------------------------------------------------------------
_type_name = shapes.kind_of  # one vocabulary with validate's: `an integer`, `a number`


def _expect(value: object, kind: type | tuple[type, ...], path: str, what: str) -> object:
    if isinstance(value, bool) and kind in (int, (int,)):
        raise PyociError(f"{path}: must be {what}, not a boolean")
    if not isinstance(value, kind):
        raise PyociError(f"{path}: must be {what}, not {_type_name(value)}")
    return value


def _obj(parent: dict, key: str, path: str) -> dict:
    value = parent.get(key)
    return {} if value is None else _expect(value, dict, path, "an object")


def _list(parent: dict, key: str, path: str) -> list:
    value = parent.get(key)
    return [] if value is None else _expect(value, list, path, "an array")


def _str(parent: dict, key: str, path: str, default: str | None = None) -> str | None:
    value = parent.get(key)
    return default if value is None else _expect(value, str, path, "a string")


def _int(
    parent: dict, key: str, path: str, default: int | None = None, lo: int = 0, hi: int = 2**32 - 1
) -> int | None:
    value = parent.get(key)
    if value is None:
        return default
    return _ranged(value, path, lo, hi)


def _ranged(value: object, path: str, lo: int = 0, hi: int = 2**32 - 1) -> int:
    """`value`, an integer in [lo, hi] (by default a uid_t/gid_t), or the error naming `path`."""
    _expect(value, int, path, "an integer")
    if not lo <= value <= hi:  # type: ignore[operator]
        raise PyociError(f"{path}: {value} is out of range [{lo}, {hi}]")
    return value  # type: ignore[return-value]


def _bool(parent: dict, key: str, path: str) -> bool:
    value = parent.get(key)
    return False if value is None else _expect(value, bool, path, "a boolean")


def _strings(parent: dict, key: str, path: str) -> list[str]:
    items = _list(parent, key, path)
    for i, item in enumerate(items):
        _expect(item, str, f"{path}[{i}]", "a string")
    return items


def _absolute(value: str, path: str) -> str:
    if not value.startswith("/"):
        raise PyociError(f"{path}: {value!r} must be an absolute path")
    return value


# --- the model ---------------------------------------------------------------------------------
class IDMapping:
    """One uid/gid mapping range (containerID, hostID, size)."""

    __slots__ = ("container_id", "host_id", "size")

    def __init__(self, container_id: int, host_id: int, size: int) -> None:
        self.container_id = container_id
        self.host_id = host_id
        self.size = size

    def line(self) -> str:
        return f"{self.container_id} {self.host_id} {self.size}\n"


def _mappings(parent: dict, key: str, path: str) -> list[IDMapping]:
    out = []
    for i, item in enumerate(_list(parent, key, path)):
        p = f"{path}[{i}]"
        _expect(item, dict, p, "an object")
        size = _int(item, "size", f"{p}.size")
        if size is None or size == 0:
            raise PyociError(f"{p}.size: must be a positive integer")
        container_id = _int(item, "containerID", f"{p}.containerID", 0)
        host_id = _int(item, "hostID", f"{p}.hostID", 0)
        out.append(IDMapping(container_id, host_id, size))  # type: ignore[arg-type]
    return out


class User:
    """process.user."""

    __slots__ = ("uid", "gid", "umask", "additional_gids", "username")

    def __init__(self, raw: dict, path: str) -> None:
        self.uid: int = _int(raw, "uid", f"{path}.uid", 0)  # type: ignore[assignment]
        self.gid: int = _int(raw, "gid", f"{path}.gid", 0)  # type: ignore[assignment]
        self.umask = _int(raw, "umask", f"{path}.umask", None, 0, 0o7777)
        self.additional_gids: list[int] = []
        for i, gid in enumerate(_list(raw, "additionalGids", f"{path}.additionalGids")):
            self.additional_gids.append(_ranged(gid, f"{path}.additionalGids[{i}]"))
        self.username = _str(raw, "username", f"{path}.username")


class Rlimit:
    """One process.rlimits entry."""

    __slots__ = ("type", "resource", "soft", "hard")

    def __init__(self, raw: dict, path: str) -> None:
        _expect(raw, dict, path, "an object")
        self.type = _str(raw, "type", f"{path}.type")
        if self.type not in RLIMITS:
            raise PyociError(f"{path}.type: unknown rlimit type {self.type!r}")
        self.resource = RLIMITS[self.type]
        for key in ("soft", "hard"):  # REQUIRED: taken as 0, a missing one would cripple
            if raw.get(key) is None:
                raise PyociError(f"{path}.{key}: is required")
        self.soft: int = _int(raw, "soft", f"{path}.soft", 0, 0, 2**64 - 1)  # type: ignore[assignment]
        self.hard: int = _int(raw, "hard", f"{path}.hard", 0, 0, 2**64 - 1)  # type: ignore[assignment]
        if self.soft > self.hard:
            raise PyociError(f"{path}: soft limit {self.soft} exceeds hard limit {self.hard}")


class Process:
    """The `process` object: what runs in the container and with which credentials."""

    __slots__ = (
        "terminal",
        "console_size",
        "user",
        "args",
        "env",
        "cwd",
        "capabilities",
        "rlimits",
        "no_new_privileges",
        "oom_score_adj",
        "raw",
        "warnings",
    )

    def __init__(self, raw: dict, path: str = "process") -> None:
        _expect(raw, dict, path, "an object")
        shapes.check_process(raw, path)  # the parts applied from the raw object
        self.raw = raw
        self.terminal = _bool(raw, "terminal", f"{path}.terminal")
        size = _obj(raw, "consoleSize", f"{path}.consoleSize")
        self.console_size = (
            (
                _int(size, "height", f"{path}.consoleSize.height", 0, 0, 0xFFFF),  # winsize
                _int(size, "width", f"{path}.consoleSize.width", 0, 0, 0xFFFF),
            )
            if size
            else None
        )
        self.user = User(_obj(raw, "user", f"{path}.user"), f"{path}.user")
        self.args = _strings(raw, "args", f"{path}.args")
        if not self.args:
            raise PyociError(f"{path}.args: must not be empty")
        self.env = _strings(raw, "env", f"{path}.env")
        cwd = _str(raw, "cwd", f"{path}.cwd")
        if cwd is None:
            raise PyociError(f"{path}.cwd: is required")
        self.cwd = _absolute(cwd, f"{path}.cwd")
        caps = _obj(raw, "capabilities", f"{path}.capabilities")
        self.capabilities: dict[str, list[int]] | None = {} if caps else None
        # config.md, Extensibility: an unknown property MUST be ignored, not an error (runc
        # ignores it too). A set the config does not name is empty, so a misspelt one grants
        # nothing.
        for set_name in (name for name in CAP_SETS if name in caps):
            p = f"{path}.capabilities.{set_name}"
            numbers = []
            for i, name in enumerate(_strings(caps, set_name, p)):
                if name not in CAP_NUMBER:
                    raise PyociError(f"{p}[{i}]: unknown capability {name!r}")
                numbers.append(CAP_NUMBER[name])
            self.capabilities[set_name] = numbers  # type: ignore[index]
        # Ambient caps the kernel cannot raise are dropped with a warning, not an error (the
        # spec: MUST warn, SHOULD NOT fail; `runc spec`'s default config has them).
        self.warnings: list[str] = []
        if self.capabilities:
            self.warnings = rules.ambient_warnings(self.capabilities, CAPABILITIES)
            if self.warnings:
                allowed = set(self.capabilities.get("permitted", [])) & set(
                    self.capabilities.get("inheritable", [])
                )
                ambient = self.capabilities.get("ambient", [])
                self.capabilities["ambient"] = [c for c in ambient if c in allowed]
        self.rlimits = [
            Rlimit(r, f"{path}.rlimits[{i}]")
            for i, r in enumerate(_list(raw, "rlimits", f"{path}.rlimits"))
        ]
        seen: dict[str, int] = {}
        for i, r in enumerate(self.rlimits):
            if r.type in seen:
                raise PyociError(
                    f"{path}.rlimits[{i}].type: {r.type} duplicated "
                    f"(also at {path}.rlimits[{seen[r.type]}])"
                )
            seen[r.type] = i
        self.no_new_privileges = _bool(raw, "noNewPrivileges", f"{path}.noNewPrivileges")
        self.oom_score_adj = _int(raw, "oomScoreAdj", f"{path}.oomScoreAdj", None, -1000, 1000)
        affinity = _obj(raw, "execCPUAffinity", f"{path}.execCPUAffinity")
        for key in ("initial", "final"):
            _str(affinity, key, f"{path}.execCPUAffinity.{key}")
        _str(raw, "apparmorProfile", f"{path}.apparmorProfile")
        _str(raw, "selinuxLabel", f"{path}.selinuxLabel")
        # execCPUAffinity's lists, and labels this host cannot apply (pyoci.rules): also for
        # `exec --process FILE`, which builds a Process and no Spec.
        for problem_path, reason in rules.process_problems(raw, (path,)):
            raise PyociError(f"{rules.dotted(problem_path)}: {reason}")

    def env_dict(self) -> dict[str, str]:
        """process.env as execve wants it; a later duplicate wins, as in a shell."""
        env: dict[str, str] = {}
        for item in self.env:
            key, sep, value = item.partition("=")
            if sep:
                env[key] = value
        return env


class Mount:
    """One `mounts[]` entry."""

    __slots__ = ("destination", "type", "source", "options", "uid_mappings", "gid_mappings", "path")

    def __init__(self, raw: dict, path: str) -> None:
        _expect(raw, dict, path, "an object")
        self.path = path
        destination = _str(raw, "destination", f"{path}.destination")
        if destination is None:
            raise PyociError(f"{path}.destination: is required")
        if not destination:  # not "relative to /": it would cover the whole rootfs
            raise PyociError(f"{path}.destination: must not be empty")
        # config.md (1.2+): a relative destination "MUST be interpreted as relative to "/""
        # (deprecated, still valid).
        self.destination = destination if destination.startswith("/") else "/" + destination
        self.type = _str(raw, "type", f"{path}.type", "")
        self.source = _str(raw, "source", f"{path}.source", "")
        self.options = _strings(raw, "options", f"{path}.options")
        self.uid_mappings = _mappings(raw, "uidMappings", f"{path}.uidMappings")
        self.gid_mappings = _mappings(raw, "gidMappings", f"{path}.gidMappings")


class Namespace:
    """One linux.namespaces entry: a new namespace, or a join of `path`."""

    __slots__ = ("type", "path")

    def __init__(self, raw: dict, path: str) -> None:
        _expect(raw, dict, path, "an object")
        self.type = _str(raw, "type", f"{path}.type")
        if self.type not in NAMESPACE_TYPES:
            raise PyociError(f"{path}.type: unknown namespace type {self.type!r}")
        ns_path = _str(raw, "path", f"{path}.path")
        self.path = _absolute(ns_path, f"{path}.path") if ns_path else None


class Device:
    """One linux.devices entry."""

    __slots__ = ("path", "type", "major", "minor", "file_mode", "uid", "gid")

    def __init__(self, raw: dict, path: str) -> None:
        _expect(raw, dict, path, "an object")
        dev_path = _str(raw, "path", f"{path}.path")
        if dev_path is None:
            raise PyociError(f"{path}.path: is required")
        self.path = _absolute(dev_path, f"{path}.path")
        self.type = _str(raw, "type", f"{path}.type")
        if self.type not in ("c", "b", "u", "p"):
            raise PyociError(f"{path}.type: must be one of c, b, u, p, not {self.type!r}")
        self.major = _int(raw, "major", f"{path}.major", None, 0, 2**32 - 1)
        self.minor = _int(raw, "minor", f"{path}.minor", None, 0, 2**32 - 1)
        if self.type != "p" and (self.major is None or self.minor is None):
            raise PyociError(f"{path}: major and minor are required for type {self.type!r}")
        # podman writes the whole st_mode (0o20600: S_IFCHR|0600); as runc, the permission
        # bits are what count (the type is `type`).
        file_mode = _int(raw, "fileMode", f"{path}.fileMode", None, 0, 0o177777)
        self.file_mode = None if file_mode is None else file_mode & 0o7777
        self.uid = _int(raw, "uid", f"{path}.uid")
        self.gid = _int(raw, "gid", f"{path}.gid")


class Spec:
    """A parsed config.json. `raw` keeps the whole document (for hooks, state, features)."""

    def __init__(self, raw: dict, bundle: str) -> None:
        _expect(raw, dict, "(root)", "an object")
        self.raw = raw
        self.bundle = bundle
        self.oci_version = _str(raw, "ociVersion", "ociVersion")
        if self.oci_version is None:
            raise PyociError("ociVersion: is required")
        root = _obj(raw, "root", "root")
        root_path = _str(root, "path", "root.path")
        if not root_path:
            raise PyociError("root.path: is required")
        self.root_path = os.path.normpath(os.path.join(bundle, root_path))
        self.root_readonly = _bool(root, "readonly", "root.readonly")
        self.process = Process(raw["process"]) if raw.get("process") is not None else None
        self.hostname = _str(raw, "hostname", "hostname")
        self.domainname = _str(raw, "domainname", "domainname")
        self.mounts = [
            Mount(m, f"mounts[{i}]") for i, m in enumerate(_list(raw, "mounts", "mounts"))
        ]
        self.annotations: dict[str, str] = _obj(raw, "annotations", "annotations")
        for key, value in self.annotations.items():
            _expect(value, str, rules.dotted(("annotations", key)), "a string")
        hooks = _obj(raw, "hooks", "hooks")
        self.hooks: dict[str, list[dict]] = {}
        for name in HOOK_NAMES:
            entries = _list(hooks, name, f"hooks.{name}")
            for i, hook in enumerate(entries):
                p = f"hooks.{name}[{i}]"
                _expect(hook, dict, p, "an object")
                _absolute(_str(hook, "path", f"{p}.path") or "", f"{p}.path")
                _strings(hook, "args", f"{p}.args")
                _strings(hook, "env", f"{p}.env")
                _int(hook, "timeout", f"{p}.timeout", None, 1, 2**31 - 1)
            if entries:
                self.hooks[name] = entries
        linux = _obj(raw, "linux", "linux")
        self.linux = linux
        shapes.check_linux(linux)  # the parts applied from the raw document
        self.namespaces = [
            Namespace(n, f"linux.namespaces[{i}]")
            for i, n in enumerate(_list(linux, "namespaces", "linux.namespaces"))
        ]
        seen: dict[str, int] = {}
        for i, ns in enumerate(self.namespaces):
            if ns.type in seen:
                raise PyociError(
                    f"linux.namespaces[{i}].type: {ns.type} duplicated "
                    f"(also at linux.namespaces[{seen[ns.type]}])"
                )
            seen[ns.type] = i
        self.uid_mappings = _mappings(linux, "uidMappings", "linux.uidMappings")
        self.gid_mappings = _mappings(linux, "gidMappings", "linux.gidMappings")
        user_ns = self.namespace("user")
        if (self.uid_mappings or self.gid_mappings) and (user_ns is None or user_ns.path):
            raise PyociError(
                "linux.uidMappings: mappings need a new user namespace in linux.namespaces"
            )
        if (
            user_ns is not None
            and user_ns.path is None
            and not (self.uid_mappings and self.gid_mappings)
        ):
            raise PyociError(
                "linux.uidMappings: a new user namespace needs uidMappings and gidMappings"
            )
        self.devices = [
            Device(d, f"linux.devices[{i}]")
            for i, d in enumerate(_list(linux, "devices", "linux.devices"))
        ]
        self.masked_paths = [
            _absolute(p, f"linux.maskedPaths[{i}]")
            for i, p in enumerate(_strings(linux, "maskedPaths", "linux.maskedPaths"))
        ]
        self.readonly_paths = [
            _absolute(p, f"linux.readonlyPaths[{i}]")
            for i, p in enumerate(_strings(linux, "readonlyPaths", "linux.readonlyPaths"))
        ]
        self.rootfs_propagation = _str(linux, "rootfsPropagation", "linux.rootfsPropagation")
        if (
            self.rootfs_propagation is not None
            and self.rootfs_propagation not in ROOTFS_PROPAGATIONS
        ):
            raise PyociError(
                f"linux.rootfsPropagation: unknown propagation {self.rootfs_propagation!r}"
            )
        self.sysctl: dict[str, str] = _obj(linux, "sysctl", "linux.sysctl")
        for key, value in self.sysctl.items():
            _expect(value, str, rules.dotted(("linux", "sysctl", key)), "a string")
        self.time_offsets: dict[str, dict] = _obj(linux, "timeOffsets", "linux.timeOffsets")
        self.cgroups_path = _str(linux, "cgroupsPath", "linux.cgroupsPath")
        policy = _obj(linux, "memoryPolicy", "linux.memoryPolicy")
        _str(policy, "mode", "linux.memoryPolicy.mode")
        _str(policy, "nodes", "linux.memoryPolicy.nodes")
        _strings(policy, "flags", "linux.memoryPolicy.flags")
        _str(linux, "mountLabel", "linux.mountLabel")
        # The cross-field rules `pyoci validate` applies too (one definition: pyoci.rules).
        for path, reason in rules.problems(raw):
            raise PyociError(f"{rules.dotted(path)}: {reason}")

    def namespace(self, ns_type: str) -> Namespace | None:
        for ns in self.namespaces:
            if ns.type == ns_type:
                return ns
        return None

    def has_new(self, ns_type: str) -> bool:
        """True when the container gets a namespace of its own (not the host's, not a join)."""
        ns = self.namespace(ns_type)
        return ns is not None and ns.path is None


def read_config(path: str, bundle: str) -> bytes:
    """config.json's bytes: non-blocking and a regular file only (a fifo or a device there
    must not hang us), bounded in size. Shared by `create` and `validate`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            st = os.fstat(fd)
            if (st.st_mode & 0o170000) != 0o100000:
                raise PyociError(f"config.json: {path} is not a regular file")
            if st.st_size > MAX_CONFIG_SIZE:
                raise PyociError(
                    f"config.json: {path} is {st.st_size} bytes (at most {MAX_CONFIG_SIZE})"
                )
            chunks = []
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
            data = b"".join(chunks)
        finally:
            os.close(fd)
    except FileNotFoundError:
        raise PyociError(f"config.json: no such file in bundle {bundle}") from None
    except OSError as err:
        raise PyociError(f"config.json: cannot read {path}: {err.strerror}") from None
    return data


# runc reads any size; 64 MiB is far beyond any real config and keeps a hostile one bounded.
MAX_CONFIG_SIZE = 64 << 20


def load(bundle: str) -> Spec:
    """Read and check `<bundle>/config.json`; malformed JSON names line and column."""
    from pyoci import jsonfast

    bundle = os.path.abspath(bundle)
    path = os.path.join(bundle, "config.json")
    data = read_config(path, bundle)
    try:
        raw = jsonfast.loads(data)
    except UnicodeDecodeError as err:
        raise PyociError(f"config.json: not UTF-8 ({err.reason})") from None
    except RecursionError:
        raise PyociError("config.json: nested too deeply") from None
    except ValueError as err:  # json.JSONDecodeError, from the C scanner
        line, column = getattr(err, "lineno", 0), getattr(err, "colno", 0)
        reason = getattr(err, "msg", str(err))
        raise PyociError(
            f"config.json: invalid JSON at line {line} column {column}: {reason}"
        ) from None
    try:
        spec = Spec(raw, bundle)
    except RecursionError:
        raise PyociError("config.json: nested too deeply") from None
    if not os.path.isdir(spec.root_path):
        raise PyociError(f"root.path: {spec.root_path} is not a directory")
    return spec
