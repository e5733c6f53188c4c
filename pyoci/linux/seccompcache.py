"""Compiled seccomp programs, cached so that a known profile costs no libseccomp at all.

Building podman's default profile with libseccomp (import pyseccomp, load the library, add
~400 rules, export) takes ~25 ms, on every container, for the same few profiles. The result
is a plain BPF program, so pyoci keeps it: keyed by the SHA-256 of the canonical
`linux.seccomp` object, the machine, the libseccomp library file and pyoci's own translation
code (pyoci/linux/seccomp.py), stored in `<state root>/.seccomp-cache/` (0700, owned by the
user running pyoci), and loaded with seccomp(2) directly (pyoci-exec with no_new_privs,
`sysbind.seccomp_load` without: pyoci.linux.seccompfilter). Profiles with a NOTIFY action
keep the libseccomp path (the listener protocol is libseccomp's).

Safety: nothing is ever read from the bundle; a cache directory not owned by us or open to
others is not used; each file carries its key and the program's SHA-256, checked before use
(a torn or foreign file is a miss, never an error); at most MAX_ENTRIES files, oldest evicted.
"""

from __future__ import annotations

import os

from pyoci import jsonfast
from pyoci.linux.seccompfilter import CompiledFilter, flags_of

CACHE_DIR = ".seccomp-cache"
MAX_ENTRIES = 64
MAGIC = b"pyoci-seccomp-1\n"
# Where Debian (and most distributions) put the library pyseccomp loads by its soname.
_LIBRARY_CANDIDATES = (
    "/lib/x86_64-linux-gnu/libseccomp.so.2",
    "/usr/lib/x86_64-linux-gnu/libseccomp.so.2",
    "/lib/aarch64-linux-gnu/libseccomp.so.2",
    "/usr/lib/aarch64-linux-gnu/libseccomp.so.2",
    "/usr/lib64/libseccomp.so.2",
    "/lib64/libseccomp.so.2",
    "/usr/lib/libseccomp.so.2",
)


def _hashlib():
    import _sha256  # the C module hashlib wraps (Python 3.11): hashlib itself costs ~4 ms

    return _sha256


def _sorted(value: object) -> object:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def _identity(path: str) -> str:
    try:
        st = os.stat(path)
    except OSError:
        return f"{path}:missing"
    return f"{os.path.realpath(path)}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


def key(raw: dict) -> str:
    """What the compiled program depends on: the profile, the machine, libseccomp, and the
    code that turns the profile into libseccomp calls."""
    library = next((p for p in _LIBRARY_CANDIDATES if os.path.exists(p)), "libseccomp.so.2")
    translator = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seccomp.py")
    text = "\n".join(
        (
            jsonfast.dumps(_sorted(raw)),
            os.uname().machine,
            _identity(library),
            _identity(translator),
        )
    )
    return _hashlib().sha256(text.encode()).hexdigest()


def _dir(root: str, create: bool) -> str | None:
    """The cache directory, if it is safe to use: ours, and closed to everyone else."""
    path = os.path.join(root, CACHE_DIR)
    if create:
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        except OSError:
            return None
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if (st.st_mode & 0o170000) != 0o040000 or st.st_uid != os.geteuid() or st.st_mode & 0o077:
        return None
    return path


def load(root: str, cache_key: str) -> bytes | None:
    """The cached program for `cache_key`, verified, or None."""
    directory = _dir(root, create=False)
    if directory is None:
        return None
    try:
        fd = os.open(os.path.join(directory, cache_key), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if st.st_uid != os.geteuid() or st.st_mode & 0o077 or st.st_size > 1 << 20:
            return None
        data = os.read(fd, st.st_size + 1)
    finally:
        os.close(fd)
    header, _, rest = data.partition(b"\n\n")
    lines = header.split(b"\n")
    if len(lines) != 3 or lines[0] + b"\n" != MAGIC or lines[1].decode() != cache_key:
        return None
    if not rest or len(rest) % 8 or _hashlib().sha256(rest).hexdigest().encode() != lines[2]:
        return None
    return rest


def store(root: str, cache_key: str, program: bytes) -> None:
    """Write atomically (a temp file, then rename); evict the oldest beyond MAX_ENTRIES.
    Best effort: a cache that cannot be written only costs the next create its time."""
    directory = _dir(root, create=True)
    if directory is None:
        return
    digest = _hashlib().sha256(program).hexdigest()
    data = MAGIC + cache_key.encode() + b"\n" + digest.encode() + b"\n\n" + program
    from pyoci.state import write_atomic

    try:
        write_atomic(os.path.join(directory, cache_key), data)
        _evict(directory)
    except OSError:
        pass


def _evict(directory: str) -> None:
    entries = []
    for name in os.listdir(directory):
        if name.startswith("."):
            continue
        try:
            entries.append((os.stat(os.path.join(directory, name)).st_mtime_ns, name))
        except OSError:
            continue
    entries.sort()
    for _, name in entries[: max(0, len(entries) - MAX_ENTRIES)]:
        try:
            os.unlink(os.path.join(directory, name))
        except OSError:
            pass


def uses_notify(raw: dict) -> bool:
    if raw.get("defaultAction") == "SCMP_ACT_NOTIFY":
        return True
    rules = raw.get("syscalls") or []
    return any(isinstance(r, dict) and r.get("action") == "SCMP_ACT_NOTIFY" for r in rules)


def compiled(raw: dict, root: str):
    """The filter for `linux.seccomp`: from the cache when this profile was compiled before,
    else compiled with libseccomp (which also checks it) and cached. A profile with NOTIFY
    gets libseccomp's own SeccompPlan (its listener fd comes from libseccomp)."""
    if uses_notify(raw):
        from pyoci.linux.seccomp import SeccompPlan

        return SeccompPlan(raw)
    cache_key = key(raw)
    program = load(root, cache_key)
    if program is None:
        from pyoci.linux.seccomp import SeccompPlan

        program = SeccompPlan(raw).export_bytes()
        store(root, cache_key, program)
    return CompiledFilter(program, flags_of(raw))
