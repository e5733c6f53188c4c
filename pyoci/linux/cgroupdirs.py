"""A container's cgroup directories as its record lists them, and their removal when empty.

Apart from the cgroup manager (`pyoci.linux.cgroups`, 650 lines, ~0.5 ms to load) because
`delete` of a stopped container — the last runtime call of every container a client runs —
needs nothing else in the usual case: every directory pyoci made is empty, and one rmdir
each removes it (issue 19: `delete` within 1 ms of the interpreter's start). Whatever is
unusual — a process left behind, a sub-cgroup, realtime budgets to give back, a record from
before pyoci listed what it made, /sys/fs/cgroup hidden by `ip netns exec` — is left to the
manager, which checks for processes, kills them with --force and explains what stays.

`posix` only and no `__future__` import, as for every module `delete` loads (`pyoci.entry`).
"""

import posix

CGROUP_ROOT = "/sys/fs/cgroup"
# The v1 hierarchies a container's processes are read from, in order of preference.
LISTING_ORDER = ("pids", "freezer", "memory", "cpu")


def is_mount(path: str) -> bool:
    """os.path.ismount without os: a different device than the parent's, or the same inode
    (the root)."""
    try:
        here, parent = posix.lstat(path), posix.lstat(path.rstrip("/") + "/..")
    except OSError:
        return False
    if here.st_mode & 0o170000 != 0o040000:  # not a directory (a link is never a mount here)
        return False
    return here.st_dev != parent.st_dev or here.st_ino == parent.st_ino


def listing_source(dirs: dict[str, str], v2: str | None) -> tuple[str, str] | None:
    """(directory, /proc/PID/cgroup key) of the hierarchy that lists the container's
    processes: pids, freezer, memory or cpu in v1, else cgroup2; None without either."""
    for key in LISTING_ORDER:
        if key in dirs:
            return dirs[key], key
    return (v2, "") if v2 else None


def own_dirs(dirs: dict[str, str], v2: str | None) -> list[str]:
    """The container's own directories: each v1 one once (co-mounted controllers share
    one), sorted, then the cgroup2 one."""
    out = sorted(set(dirs.values()))
    if v2:
        out.append(v2)
    return out


def remove_made_parents(made: list[str], own: list[str]) -> None:
    """rmdir the parents pyoci made on the way to `own`, innermost first, while empty: one
    that another container's cgroup is in now (EBUSY), or that is gone, stays as it is."""
    for parent in reversed(made):
        if parent not in own:
            try:
                posix.rmdir(parent)
            except OSError:
                pass


def remove_if_empty(record: dict | None) -> bool:
    """Remove the directories a cgroup record (`Manager.to_state`) says pyoci made, when
    each is empty: True once they are all gone (or there was no cgroup). False as soon as
    anything needs the manager; what was removed by then is gone, which the manager takes
    as done."""
    if not record:
        return True
    made = record.get("made")
    if made is None or record.get("rtRaised") or not is_mount(CGROUP_ROOT):
        return False
    dirs = record["dirs"]
    own = own_dirs(dirs, record.get("v2"))
    # The listing hierarchy first: a cgroup still in use fails on the first rmdir.
    source = listing_source(dirs, record.get("v2"))
    first = [source[0]] if source else []
    for directory in first + [d for d in own if d not in first]:
        if directory not in made:
            continue  # found existing (an empty cgroup it reused): whoever made it keeps it
        try:
            posix.rmdir(directory)
        except FileNotFoundError:
            pass
        except OSError:  # EBUSY: a process or a sub-cgroup in it; ENODEV, EACCES...
            return False
    remove_made_parents(made, own)
    return True
