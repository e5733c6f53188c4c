"""cgroups for v1, v2 and hybrid hosts: placement, resources, freezer, pids, stats.

One `Manager` covers every layout: it knows the container's directory in each v1 hierarchy
(`cpu`, `memory`, ...) and in the cgroup2 hierarchy, if any. On a hybrid host (v1 controllers
plus cgroup2 at /sys/fs/cgroup/unified, where e.g. hugetlb lives) both are used: each
controller is driven where the host has it, which is why pyoci runs where crun refuses to.

Placement follows the spec: `linux.cgroupsPath` absolute (from each hierarchy's root) or
relative (below the runtime's own cgroup); with `--systemd-cgroup`, `slice:prefix:name` maps to
the directory layout systemd and runc use (`a-b.slice` → `a.slice/a-b.slice`,
`<prefix>-<name>.scope`), written directly since this host has no systemd. Unset: /pyoci/<id>.
Resource values are converted between v1 and v2 the way runc does (shares → weight, ...).

Ownership (the security model in design.md): a cgroup that already holds a process, or is
frozen, belongs to someone else, and `create` refuses it (runtime-spec: the runtime may check
that the cgroup is fit and must then error; runc 1.2 refuses the same). pyoci records each
directory it made; `destroy` removes only those (an existing empty cgroup it reused stays), and
`holds()` lets the lifecycle confirm that a pid is in the container's cgroup before signalling it.
"""

import posix

from pyoci.errors import PyociError
from pyoci.linux import mountinfo
from pyoci.linux.cgroupdirs import (
    CGROUP_ROOT,
    is_mount,
    listing_source,
    own_dirs,
    remove_made_parents,
)

# `delete`, `kill --all` and `ps` load this module: what they use here works with `posix` (what
# `os` re-exports) and string paths, since `os` alone costs ~1 ms to import (pyoci.entry says
# why), and no `__future__` import; the functions of `create` and `exec` import `os` themselves.

# The parent of every container placed by default (/pyoci/<id>): pyoci's own directory.
DEFAULT_PARENT = "pyoci"
_NOT_CONTROLLERS = ("rw", "ro", "xattr", "noprefix", "clone_children", "cpuset_v2_mode")


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


_MOUNTS: tuple[dict[str, str], str | None] | None = None
_CGROUP_MOUNTS: list[mountinfo.Mount] | None = None  # what _MOUNTS was derived from


def mounts() -> tuple[dict[str, str], str | None]:
    """({v1 controller or name=...: mount point}, cgroup2 mount point or None), read once
    per process: a command asks several times and the hierarchies do not move under it."""
    global _MOUNTS
    if _MOUNTS is None:
        _MOUNTS = _readmounts()
        points = [*_MOUNTS[0].values(), _MOUNTS[1] or ""]
        if not any(p == CGROUP_ROOT or p.startswith(CGROUP_ROOT + "/") for p in points):
            # `ip netns exec` hides /sys/fs/cgroup (pyoci.linux.cgroupview): see it again.
            from pyoci.linux import cgroupview

            if cgroupview.restore():
                _MOUNTS = _readmounts()
    return _MOUNTS


def cgroup_mounts() -> list[mountinfo.Mount]:
    """This process's cgroup and cgroup2 mounts, from the same read of mountinfo as
    `mounts()` (planning needs both: one read, not two)."""
    mounts()
    if _CGROUP_MOUNTS is None:  # `_MOUNTS` was set from elsewhere (tests)
        return [m for m in mountinfo.read() if m.fstype in ("cgroup", "cgroup2")]
    return _CGROUP_MOUNTS


def _readmounts() -> tuple[dict[str, str], str | None]:
    global _CGROUP_MOUNTS
    _CGROUP_MOUNTS = [m for m in mountinfo.read() if m.fstype in ("cgroup", "cgroup2")]
    found = [(m.point, m.fstype, m.super_options) for m in _CGROUP_MOUNTS]
    # The hierarchies under /sys/fs/cgroup when there are any: a cgroup mount elsewhere may be
    # a container's (its /sys/fs/cgroup below its rootfs, mounted before it), not the host's.
    under = [m for m in found if m[0] == CGROUP_ROOT or m[0].startswith(CGROUP_ROOT + "/")]
    v1: dict[str, str] = {}
    v2 = None
    for point, fstype, options in under or found:
        if fstype == "cgroup2" and v2 is None:
            v2 = point
        elif fstype == "cgroup":
            for opt in options.split(","):
                if opt in _NOT_CONTROLLERS or "=" in opt and not opt.startswith("name="):
                    continue
                v1.setdefault(opt, point)
    return v1, v2


# Concurrent creates and deletes share parent directories (/pyoci): a delete may remove one
# (it made it, and it looked empty) just before a create makes its own directory in it.
_RACE_RETRIES = 5


def _mkdir(directory: str, made: list[str]) -> None:
    """mkdir that records what it made; a directory another create made meanwhile is theirs.
    FileNotFoundError: the parent went meanwhile (the callers try again)."""
    import os

    try:
        os.mkdir(directory)
    except FileExistsError:
        if not os.path.isdir(directory):
            raise
        return
    made.append(directory)


def _makedirs(directory: str, made: list[str]) -> None:
    """mkdir -p that records in `made` each directory it created, outermost first (also
    when a later mkdir fails, so the caller can undo exactly its own work); a parent that a
    concurrent delete removed under it is made again."""
    import os

    for attempt in range(_RACE_RETRIES):
        missing = []
        current = directory
        while not os.path.isdir(current):
            missing.append(current)
            current = os.path.dirname(current)
        try:
            for d in reversed(missing):
                _mkdir(d, made)
            return
        except FileNotFoundError:
            if attempt == _RACE_RETRIES - 1:
                raise


def layout() -> str:
    """`unified`, `hybrid` or `legacy`."""
    v1, v2 = mounts()
    if not v1:
        return "unified"
    return "hybrid" if v2 else "legacy"


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """/proc/PID/cgroup → {hierarchy key: path}: the key is the line's controller list as the
    kernel writes it (`cpu,cpuacct`, `name=systemd`), '' for cgroup2."""
    out = {}
    for line in text.splitlines():
        _, key, path = line.split(":", 2)
        out[key] = path
    return out


def proc_cgroup(pid: int | str = "self") -> dict[str, str]:
    """The cgroups of process `pid` (see parse_proc_cgroup); OSError if it is gone."""
    with open(f"/proc/{pid}/cgroup") as f:
        return parse_proc_cgroup(f.read())


def _own_paths() -> dict[str, str]:
    """Our cgroup in each hierarchy: {'' (v2) or controller: path}."""
    out = {}
    for key, path in proc_cgroup().items():
        if key == "":
            out[""] = path
        for c in key.split(","):
            if c:
                out[c] = path
    return out


def expand_systemd_path(value: str, container_id: str) -> str:
    """`slice:prefix:name` → runc's directory layout (without a systemd to ask)."""
    parts = value.split(":")
    if len(parts) != 3:
        raise PyociError(
            f"linux.cgroupsPath: {value!r}: with --systemd-cgroup it must be slice:prefix:name"
        )
    slice_name, prefix, name = parts
    slice_name = slice_name or "system.slice"
    if not slice_name.endswith(".slice") or "/" in slice_name:
        raise PyociError(f"linux.cgroupsPath: {slice_name!r} is not a systemd slice name")
    stem = slice_name[: -len(".slice")]
    if stem != "-" and (not stem or "" in stem.split("-")):
        # systemd (and runc's ExpandSlice) refuse empty parts: `a--b`, `-a`, `a-`, `.slice`
        raise PyociError(f"linux.cgroupsPath: {slice_name!r} is not a systemd slice name")
    dirs, acc = [], []
    for piece in stem.split("-") if stem != "-" else []:
        acc.append(piece)
        dirs.append("-".join(acc) + ".slice")
    unit = name if name.endswith(".slice") else f"{prefix}-{name or container_id}.scope"
    return "/" + "/".join([*dirs, unit])


def _procs(directory: str) -> list[int]:
    """The pids in one cgroup directory (not its children); [] once it is gone."""
    try:
        return [int(p) for p in _read(f"{directory}/cgroup.procs").split()]
    except (FileNotFoundError, ProcessLookupError):  # removed, or ENODEV while being removed
        return []


def _procs_below(directory: str, first_only: bool = False) -> list[int]:
    """The pids in `directory` and every cgroup below it (runc's GetAllPids): a process in a
    sub-cgroup is as much in the cgroup as one at its top. `first_only`: stop at the first
    directory that holds any (enough to call a cgroup non-empty, and cheap at a hierarchy's
    root)."""
    found: list[int] = []
    for top in _tree(directory):
        found += _procs(top)
        if found and first_only:
            break
    return found


def _frozen_state(directory: str) -> str | None:
    """What says `directory` is frozen (`file: value`), or None: v1 freezer.state FROZEN or
    FREEZING; cgroup2's cgroup.freeze 1, or `frozen 1` in cgroup.events, which a cgroup made
    under a frozen parent inherits. A hierarchy's root has none of these files."""
    import os

    frozen_values = (
        ("freezer.state", ("FROZEN", "FREEZING")),
        ("cgroup.freeze", ("1",)),
        ("cgroup.events", ("frozen 1",)),
    )
    for name, values in frozen_values:
        try:
            lines = _read(os.path.join(directory, name)).splitlines()
        except FileNotFoundError:
            continue
        for line in lines:
            if line in values:
                return f"{os.path.join(directory, name)}: {line}"
    return None


def _tree(directory: str) -> list[str]:
    """`directory` and every directory below it, parents before children (os.walk's order,
    without os); [] if it is gone."""
    out, i = [directory], 0
    while i < len(out):
        try:
            entries = posix.scandir(out[i])
        except OSError:  # gone meanwhile (os.walk ignores it too)
            if i == 0:
                return []
            i += 1
            continue
        with entries:
            out += [e.path for e in entries if e.is_dir(follow_symlinks=False)]
        i += 1
    return out


def _rmdir_tree(directory: str) -> None:
    """rmdir `directory` and the cgroups made below it (children first); a directory that still
    holds a process is an error naming it (a cgroup with tasks cannot be removed)."""
    for top in sorted(_tree(directory), key=lambda t: -t.count("/")):
        try:
            posix.rmdir(top)
        except FileNotFoundError:
            pass
        except OSError as err:
            held = _procs_below(top)
            reason = f"processes {held} are still in it" if held else err.strerror.lower()
            raise PyociError(f"removing cgroup {top}: {reason}", err.errno) from None


def parse_sub_cgroups(values: list[str]) -> dict[str, str]:
    """runc's `exec --cgroup` values → {controller: path}, '' for "every hierarchy": one
    plain `PATH`, or any number of `CONTROLLER[,CONTROLLER...]:PATH`."""
    out: dict[str, str] = {}
    for value in values:
        parts = value.split(":")
        if len(parts) > 2:
            raise PyociError(f"--cgroup: {value!r}: expected [CONTROLLER[,CONTROLLER...]:]PATH")
        if len(parts) == 1:
            if len(values) != 1:
                raise PyociError(f"--cgroup: {value!r}: needs a CONTROLLER: prefix beside others")
            out[""] = value
            continue
        for controller in parts[0].split(","):
            if not controller:
                raise PyociError(f"--cgroup: {value!r}: empty controller name")
            if controller in out:
                raise PyociError(f"--cgroup: controller {controller!r} given more than once")
            out[controller] = parts[1]
    for value in out.values():
        if ".." in value.split("/") or not value.strip("/"):
            raise PyociError(
                f"--cgroup: {value!r}: must name a cgroup below the container's (no '..')"
            )
    return out


class Manager:
    """The container's cgroup: one directory per hierarchy."""

    def __init__(
        self,
        dirs: dict[str, str],
        v2_dir: str | None,
        rel_path: str,
        made: list[str] | None = None,
    ) -> None:
        self.dirs = dirs  # v1 controller → directory
        self.v2_dir = v2_dir
        self.rel_path = rel_path
        # Every directory pyoci created for this container, outermost first: the only ones
        # it may remove (`destroy`).
        self.made: list[str] = made if made is not None else []
        # Between `create` and the init's birth: writes that would stop it being born (a pids
        # limit below what stage 1 and the init need) wait in `deferred` as (field, directory,
        # file, value), for resources.apply_deferred.
        self.creating = False
        self.deferred: list[tuple[str, str, str, object]] = []
        # Ancestors whose realtime budget pyoci raised for this container (resources.py).
        self.rt_raised: list[str] = []

    # --- construction --------------------------------------------------------------------------
    @classmethod
    def for_container(cls, cgroups_path: str | None, container_id: str, systemd: bool) -> "Manager":
        import os

        v1, v2 = mounts()
        own = _own_paths()
        if systemd and cgroups_path:
            rel = {"*": expand_systemd_path(cgroups_path, container_id)}
        elif systemd:
            rel = {"*": expand_systemd_path(f"system.slice:pyoci:{container_id}", container_id)}
        elif not cgroups_path:
            rel = {"*": f"/{DEFAULT_PARENT}/{container_id}"}
        elif cgroups_path.startswith("/"):
            rel = {"*": cgroups_path}
        else:
            rel = {"relative": cgroups_path}
        if ".." in (next(iter(rel.values()))).split("/"):
            raise PyociError(f"linux.cgroupsPath: {cgroups_path!r} must not contain '..'")

        def path_in(key: str) -> str:
            if "*" in rel:
                return rel["*"]
            return os.path.join(own.get(key, "/"), rel["relative"])

        dirs = {}
        for controller, mountpoint in v1.items():
            dirs[controller] = os.path.normpath(mountpoint + "/" + path_in(controller).lstrip("/"))
        v2_dir = os.path.normpath(v2 + "/" + path_in("").lstrip("/")) if v2 else None
        return cls(dirs, v2_dir, next(iter(rel.values())))

    @classmethod
    def from_state(cls, data: dict) -> "Manager | None":
        raw = data.get("cgroup")
        if not raw:
            return None
        if not is_mount(CGROUP_ROOT):
            mounts()  # hidden by `ip netns exec`: seen again (pyoci.linux.cgroupview)
        manager = cls(raw["dirs"], raw.get("v2"), raw.get("path", ""), raw.get("made"))
        manager.rt_raised = raw.get("rtRaised") or []
        if "made" not in raw:  # a state written before pyoci recorded it: the old rule
            manager.made = manager.all_dirs()
        return manager

    def to_state(self) -> dict:
        out = {"dirs": self.dirs, "v2": self.v2_dir, "path": self.rel_path, "made": self.made}
        if self.rt_raised:
            out["rtRaised"] = self.rt_raised
        return out

    def paths_by_key(self) -> dict[str, str]:
        """{controllers key as in /proc/self/cgroup: path inside the hierarchy}, for the
        container's `cgroup` mount."""
        import os

        out = {}
        v1, v2 = mounts()
        for key in proc_cgroup():
            first = key.split(",")[0]
            if key == "" and self.v2_dir and v2:
                out[""] = "/" + os.path.relpath(self.v2_dir, v2)
            elif first in self.dirs:
                out[key] = "/" + os.path.relpath(self.dirs[first], v1[first])
        return out

    # --- lifecycle -----------------------------------------------------------------------------
    def create(self) -> None:
        """Refuse a cgroup that is not fit, then mkdir in every hierarchy (on v2 enabling the
        controllers the host offers on the way), recording in `made` what was created. On
        failure nothing pyoci made is left."""
        import os

        # Before anything is written: a cgroup someone else uses is not touched at all.
        self._refuse_unfit([d for d in self.all_dirs() if os.path.isdir(d)])
        made: list[str] = []
        try:
            for directory in sorted(set(self.dirs.values())):
                _makedirs(directory, made)
            if "cpuset" in self.dirs:
                # A new v1 cpuset is empty, and no task may join it until it has cpus and mems.
                fill_cpuset_parents(self.dirs["cpuset"])
            if self.v2_dir:
                self._create_v2(made)
            # A cgroup made under a frozen parent is born frozen.
            self._refuse_frozen([d for d in self.all_dirs() if d in made])
        except (OSError, PyociError) as err:
            for directory in reversed(made):  # undo exactly what we made
                try:
                    os.rmdir(directory)
                except OSError:
                    pass
            if isinstance(err, PyociError):
                raise
            raise PyociError(
                f"linux.cgroupsPath: creating {err.filename}: {err.strerror.lower()}", err.errno
            ) from None
        self.made = made
        self.creating = True

    def own_ancestors(self, directory: str) -> list[str]:
        """The ancestors of `directory` (one of the container's) that are pyoci's to adjust,
        innermost first, up to the first that is not: those this container's create made, and
        pyoci's default parent (`/pyoci` at a hierarchy's root, made by some earlier create).
        An ancestor someone else made (a caller's cgroup, a slice) and all above it are not."""
        import os

        v1, v2 = mounts()
        tops = [m for m in {*v1.values(), v2} if m and directory.startswith(m.rstrip("/") + "/")]
        if not tops:
            return []
        top = max(tops, key=len).rstrip("/")
        out = []
        current = os.path.dirname(directory)
        while current.startswith(top + "/"):
            if current not in self.made and current != f"{top}/{DEFAULT_PARENT}":
                break
            out.append(current)
            current = os.path.dirname(current)
        return out

    def _refuse_unfit(self, directories: list[str]) -> None:
        """The runtime spec lets a runtime check that the cgroup is fit for the container, and
        then it must error: a process in it (in any hierarchy, at any depth) belongs to
        someone else, who would lose it to `kill --all` and `delete --force`. runc 1.2
        refuses it too."""
        for directory in directories:
            held = _procs_below(directory, first_only=True)
            if held:
                raise PyociError(
                    f"linux.cgroupsPath {self.rel_path!r}: the cgroup is not empty "
                    f"({directory} holds process {held[0]}); a container needs a cgroup of its own"
                )
        self._refuse_frozen(directories)

    def _refuse_frozen(self, directories: list[str]) -> None:
        """In a frozen cgroup the init would never run (runc refuses it as well)."""
        for directory in directories:
            if directory == self.dirs.get("freezer") or directory == self.v2_dir:
                frozen = _frozen_state(directory)
                if frozen:
                    raise PyociError(
                        f"linux.cgroupsPath {self.rel_path!r}: the cgroup is frozen ({frozen})"
                    )

    def _create_v2(self, made: list[str]) -> None:
        """mkdir -p of the cgroup2 directory, enabling on each level the controllers the
        host offers; again from the top if a concurrent delete removed a parent."""
        for attempt in range(_RACE_RETRIES):
            try:
                self._make_v2_path(made)
                return
            except FileNotFoundError:
                if attempt == _RACE_RETRIES - 1:
                    raise

    def _make_v2_path(self, made: list[str]) -> None:
        import os

        _, v2 = mounts()
        rel = os.path.relpath(self.v2_dir, v2)
        current = v2
        for part in [] if rel == "." else rel.split("/"):
            available = _read(os.path.join(current, "cgroup.controllers")).split()
            enabled = _read(os.path.join(current, "cgroup.subtree_control")).split()
            missing = [c for c in available if c not in enabled]
            if missing:
                try:
                    with open(os.path.join(current, "cgroup.subtree_control"), "w") as f:
                        f.write(" ".join(f"+{c}" for c in missing))
                except FileNotFoundError:
                    raise
                except OSError:
                    pass  # a controller busy with processes here: the rest still works
            current = os.path.join(current, part)
            if not os.path.isdir(current):
                _mkdir(current, made)

    def sub_cgroup_dirs(self, wanted: dict[str, str]) -> tuple[list[str], str | None]:
        """(v1 directories, cgroup2 directory) for a process exec'd into existing sub-cgroups
        of the container's (`parse_sub_cgroups`): PATH below its directory in every hierarchy
        for '', else below the named controllers' (on cgroup2 only the plain form: it has
        one directory), the container's own directory elsewhere."""
        import os

        unknown = [c for c in wanted if c and c not in self.dirs]
        if unknown:
            known = ", ".join(sorted(self.dirs)) or "none: cgroup v2 takes a plain PATH"
            raise PyociError(
                f"--cgroup: unknown controller {unknown[0]!r} (v1 controllers: {known})"
            )
        by_dir: dict[str, str] = {}
        for controller, directory in self.dirs.items():
            sub = wanted.get("", wanted.get(controller))
            if sub is None:
                by_dir.setdefault(directory, directory)
                continue
            target = os.path.normpath(os.path.join(directory, sub.strip("/")))
            if by_dir.get(directory, directory) not in (directory, target):
                raise PyociError(
                    f"--cgroup: {controller!r} shares its hierarchy with another controller "
                    "given a different path"
                )
            by_dir[directory] = target
        v2 = self.v2_dir
        if v2 and "" in wanted:
            v2 = os.path.normpath(os.path.join(v2, wanted[""].strip("/")))
        for target in [*by_dir.values(), *([v2] if v2 else [])]:
            if not os.path.isdir(target):
                raise PyociError(f"--cgroup: {target}: no such cgroup (make it first)")
        return sorted(set(by_dir.values())), v2

    def v1_dirs(self) -> list[str]:
        return own_dirs(self.dirs, None)

    def all_dirs(self) -> list[str]:
        return own_dirs(self.dirs, self.v2_dir)

    def _source(self) -> tuple[str, str] | None:
        """(directory, /proc/PID/cgroup key) of the hierarchy that lists the processes."""
        return listing_source(self.dirs, self.v2_dir)

    def pids(self) -> list[int]:
        """Every process in the container's cgroup and the cgroups below it (the lifecycle
        keeps only those of its pid namespace: `Container.pids`)."""
        source = self._source()
        return _procs_below(source[0]) if source else []

    def holds(self, pid: int) -> bool:
        """`pid` is now in the container's cgroup (or below it), by its /proc/PID/cgroup: asked
        after pinning the process with a pidfd, so a recycled pid is not taken for ours."""
        source = self._source()
        if source is None:
            return False
        directory, key = source
        v1, v2 = mounts()
        mountpoint = v2 if key == "" else v1.get(key)
        if not mountpoint:
            return False
        path = "/" + directory[len(mountpoint) :].strip("/")  # directory is below it
        try:
            theirs = proc_cgroup(pid)
        except (FileNotFoundError, ProcessLookupError):
            return False
        for controllers, current in theirs.items():
            if (key == "" and controllers == "") or (key and key in controllers.split(",")):
                return current == path or current.startswith(path.rstrip("/") + "/")
        return False

    def destroy(self) -> None:
        """rmdir the directories pyoci made for the container: its own (with the cgroups
        made below them since), then the parents it made on the way while they are empty.
        A directory it found existing (an empty cgroup it reused, a parent) belongs to
        whoever made it and stays. What is already gone is fine."""
        own = self.all_dirs()
        if self.rt_raised:
            from pyoci.linux.resources import release_rt_budget

            cpu = self.dirs.get("cpu")
            release_rt_budget(self, [cpu] if cpu in self.made else [])
        for directory in own:
            if directory in self.made:
                _rmdir_tree(directory)
        remove_made_parents(self.made, own)

    # --- freezer -------------------------------------------------------------------------------
    def freezer_file(self) -> str | None:
        import os

        if "freezer" in self.dirs:
            return os.path.join(self.dirs["freezer"], "freezer.state")
        if self.v2_dir and os.path.exists(os.path.join(self.v2_dir, "cgroup.freeze")):
            return os.path.join(self.v2_dir, "cgroup.freeze")
        return None

    def freeze(self, frozen: bool) -> None:
        path = self.freezer_file()
        if path is None:
            raise PyociError("pause: no freezer cgroup on this host")
        v1 = path.endswith("freezer.state")
        value = ("FROZEN" if frozen else "THAWED") if v1 else ("1" if frozen else "0")
        with open(path, "w") as f:
            f.write(value)
        if v1 and frozen:
            import select

            # FREEZING until every task stopped: poll the state (no event fd in v1).
            for _ in range(1000):
                if _read(path) == "FROZEN":
                    return
                select.select([], [], [], 0.001)
            raise PyociError("pause: the freezer did not reach FROZEN")


def fill_cpuset_parents(directory: str) -> None:
    """Copy cpuset.cpus/mems down from the nearest non-empty ancestor."""
    import os

    chain = []
    current = directory
    while os.path.exists(os.path.join(os.path.dirname(current), "cpuset.cpus")):
        chain.append(current)
        current = os.path.dirname(current)
    for d in reversed(chain):
        parent = os.path.dirname(d)
        for name in ("cpuset.cpus", "cpuset.mems"):
            with open(os.path.join(d, name)) as f:
                if f.read().strip():
                    continue
            with open(os.path.join(parent, name)) as f:
                value = f.read().strip()
            with open(os.path.join(d, name), "w") as f:
                f.write(value)
