"""/proc/PID/mountinfo, parsed: one `Mount` per line (proc(5)), its paths unescaped.

Why one module: the host's cgroup layout (cgroups), the cgroup binds of a container
(cgroupfs), the mount holding a rootfs (rootfs), pid 1's cgroup mounts (cgroupview) and the
mounts a container without a mount namespace leaves on the host (hostmounts) are all read
from mountinfo, and each copy of the parser got the format's corners (optional fields, the
` - ` separator, octal escapes) a little differently. Pure functions over text, plus `read`.
No `os` and no `__future__` import here: `delete` loads this module (through cgroups).
"""


class Mount:
    """One mountinfo line. Paths (root, point, source) are unescaped; options stay text."""

    __slots__ = (
        "mount_id",
        "parent_id",
        "root",
        "point",
        "options",
        "optional",
        "fstype",
        "source",
        "super_options",
    )

    def __init__(self, line: str) -> None:
        left, sep, right = line.rstrip("\n").partition(" - ")
        fields = left.split(" ")
        if not sep or len(fields) < 6:
            raise ValueError(f"not a mountinfo line: {line!r}")
        rest = right.split(" ")
        self.mount_id = int(fields[0])
        self.parent_id = int(fields[1])
        self.root = unescape(fields[3])
        self.point = unescape(fields[4])
        self.options = fields[5]  # per-mount: rw,nosuid,relatime
        self.optional = fields[6:]  # shared:N, master:N, propagate_from:N, unbindable
        self.fstype = rest[0]
        self.source = unescape(rest[1]) if len(rest) > 1 else ""
        self.super_options = rest[2] if len(rest) > 2 else ""  # the filesystem's: rw,mode=755

    def __repr__(self) -> str:
        return f"Mount({self.mount_id} {self.point!r} {self.fstype})"


def unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as \\ooo (octal)."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        code = field[i + 1 : i + 4]
        if field[i] == "\\" and len(code) == 3 and all("0" <= c <= "7" for c in code):
            out.append(chr(int(code, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse(text: str) -> list[Mount]:
    """Every mount of a mountinfo text, in its order (a parent before what is mounted on
    it); lines that are not mountinfo lines (a container's other output) are skipped."""
    mounts = []
    for line in text.splitlines():
        try:
            mounts.append(Mount(line))
        except ValueError:
            continue
    return mounts


def read(pid: int | str = "self") -> list[Mount]:
    """The mounts of /proc/<pid>/mountinfo (OSError if it cannot be read)."""
    with open(f"/proc/{pid}/mountinfo") as f:
        return parse(f.read())


def covering(mounts: list[Mount], path: str) -> Mount | None:
    """The mount a lookup of the absolute `path` ends on: the deepest mount point containing
    it, the last one mounted there when several are stacked."""
    best = None
    for mount in mounts:
        point = mount.point
        if (path == point or path.startswith(point.rstrip("/") + "/")) and (
            best is None or len(point) >= len(best.point)
        ):
            best = mount
    return best


def under(mounts: list[Mount], path: str) -> list[Mount]:
    """The mounts at or below the absolute `path`, in mountinfo order."""
    path = path.rstrip("/") or "/"
    prefix = path if path == "/" else path + "/"
    return [m for m in mounts if m.point == path or m.point.startswith(prefix)]
