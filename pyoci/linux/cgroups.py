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
"""

from __future__ import annotations

import os

from pyoci.errors import PyociError

CGROUP_ROOT = "/sys/fs/cgroup"
_NOT_CONTROLLERS = ("rw", "ro", "xattr", "noprefix", "clone_children", "cpuset_v2_mode")


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


_MOUNTS: tuple[dict[str, str], str | None] | None = None


def mounts() -> tuple[dict[str, str], str | None]:
    """({v1 controller or name=...: mount point}, cgroup2 mount point or None), read once
    per process: a command asks several times and the hierarchies do not move under it."""
    global _MOUNTS
    if _MOUNTS is None:
        _MOUNTS = _readmounts()
    return _MOUNTS


def _readmounts() -> tuple[dict[str, str], str | None]:
    v1: dict[str, str] = {}
    v2 = None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields, rest = left.split(), right.split()
            if len(rest) < 3:
                continue
            if rest[0] == "cgroup2" and v2 is None:
                v2 = fields[4]
            elif rest[0] == "cgroup":
                for opt in rest[2].split(","):
                    if opt in _NOT_CONTROLLERS or "=" in opt and not opt.startswith("name="):
                        continue
                    v1.setdefault(opt, fields[4])
    return v1, v2


def _makedirs(directory: str, made: list[str]) -> None:
    """mkdir -p that records in `made` each directory it created, outermost first (also
    when a later mkdir fails, so the caller can undo exactly its own work)."""
    missing = []
    current = directory
    while not os.path.isdir(current):
        missing.append(current)
        current = os.path.dirname(current)
    for d in reversed(missing):
        os.mkdir(d)
        made.append(d)


def layout() -> str:
    """`unified`, `hybrid` or `legacy`."""
    v1, v2 = mounts()
    if not v1:
        return "unified"
    return "hybrid" if v2 else "legacy"


def _own_paths() -> dict[str, str]:
    """Our cgroup in each hierarchy: {'' (v2) or controller: path}."""
    out = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if controllers == "":
                out[""] = path
            for c in controllers.split(","):
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
    dirs, acc = [], []
    for piece in stem.split("-") if stem != "-" else []:
        acc.append(piece)
        dirs.append("-".join(acc) + ".slice")
    unit = name if name.endswith(".slice") else f"{prefix}-{name or container_id}.scope"
    return "/" + "/".join([*dirs, unit])


class Manager:
    """The container's cgroup: one directory per hierarchy."""

    def __init__(self, dirs: dict[str, str], v2_dir: str | None, rel_path: str) -> None:
        self.dirs = dirs  # v1 controller → directory
        self.v2_dir = v2_dir
        self.rel_path = rel_path

    # --- construction --------------------------------------------------------------------------
    @classmethod
    def for_container(cls, cgroups_path: str | None, container_id: str, systemd: bool) -> Manager:
        v1, v2 = mounts()
        own = _own_paths()
        if systemd and cgroups_path:
            rel = {"*": expand_systemd_path(cgroups_path, container_id)}
        elif systemd:
            rel = {"*": expand_systemd_path(f"system.slice:pyoci:{container_id}", container_id)}
        elif not cgroups_path:
            rel = {"*": f"/pyoci/{container_id}"}
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
    def from_state(cls, data: dict) -> Manager | None:
        raw = data.get("cgroup")
        if not raw:
            return None
        return cls(raw["dirs"], raw.get("v2"), raw.get("path", ""))

    def to_state(self) -> dict:
        return {"dirs": self.dirs, "v2": self.v2_dir, "path": self.rel_path}

    def paths_by_key(self) -> dict[str, str]:
        """{controllers key as in /proc/self/cgroup: path inside the hierarchy}, for the
        container's `cgroup` mount."""
        out = {}
        own_keys = {}
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, controllers, _ = line.rstrip("\n").split(":", 2)
                own_keys[controllers] = controllers.split(",")[0] if controllers else ""
        v1, v2 = mounts()
        for key, first in own_keys.items():
            if key == "" and self.v2_dir and v2:
                out[""] = "/" + os.path.relpath(self.v2_dir, v2)
            elif first in self.dirs:
                out[key] = "/" + os.path.relpath(self.dirs[first], v1[first])
        return out

    # --- lifecycle -----------------------------------------------------------------------------
    def create(self) -> None:
        """mkdir in every hierarchy; on v2 enable the controllers the host offers on the way."""
        made: list[str] = []
        try:
            for directory in sorted(set(self.dirs.values())):
                _makedirs(directory, made)
            if "cpuset" in self.dirs:
                # A new v1 cpuset is empty, and no task may join it until it has cpus and mems.
                fill_cpuset_parents(self.dirs["cpuset"])
            if self.v2_dir:
                self._create_v2(made)
        except OSError as err:
            for directory in reversed(made):  # undo exactly what we made
                try:
                    os.rmdir(directory)
                except OSError:
                    pass
            raise PyociError(
                f"linux.cgroupsPath: creating {err.filename}: {err.strerror.lower()}", err.errno
            ) from None

    def _create_v2(self, made: list[str]) -> None:
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
                except OSError:
                    pass  # a controller busy with processes here: the rest still works
            current = os.path.join(current, part)
            if not os.path.isdir(current):
                os.mkdir(current)
                made.append(current)

    def v1_dirs(self) -> list[str]:
        return sorted(set(self.dirs.values()))

    def all_dirs(self) -> list[str]:
        out = self.v1_dirs()
        if self.v2_dir:
            out.append(self.v2_dir)
        return out

    def pids(self) -> list[int]:
        """Every process of the container (from the pids, freezer, or cgroup2 directory)."""
        for key in ("pids", "freezer", "memory", "cpu"):
            if key in self.dirs:
                source = self.dirs[key]
                break
        else:
            source = self.v2_dir
        if not source:
            return []
        try:
            return [int(p) for p in _read(os.path.join(source, "cgroup.procs")).split()]
        except FileNotFoundError:
            return []

    def destroy(self) -> None:
        """rmdir every directory (children first); tolerate what is already gone."""
        for directory in self.all_dirs():
            try:
                os.rmdir(directory)
            except FileNotFoundError:
                pass
            except OSError as err:
                raise PyociError(
                    f"removing cgroup {directory}: {err.strerror.lower()}", err.errno
                ) from None

    # --- freezer -------------------------------------------------------------------------------
    def freezer_file(self) -> str | None:
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
