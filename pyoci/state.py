"""The state directory of a container: `<root>/<id>/{state.json,lock,exec.fifo}`.

`state.json` is written atomically (temp file + rename) under an exclusive flock of `lock`, so a
reader never sees half a file and two mutating commands never interleave. It records what later
commands need and cannot derive (init pid *with its start time*, bundle, creation time);
the status is never stored: `status()` derives it from the process every time, in crun's order.

`posix`, not `os`, and no `__future__` import: `state`, `start`, `kill` and `delete` load this
module, and those two imports cost about as much as everything else they do (`pyoci.entry`).
Paths here are `<root>/<id>/<name>` with a checked id: joined as strings.

`write_atomic` is the one way pyoci replaces a file (state.json, the bridge address store, the
seccomp cache): a temp file of a random name in the same directory, created O_EXCL|O_NOFOLLOW
(a directory may be writable by others: root must not write through a symlink planted at a
name it could guess), then renamed over the target, which replaces a link there rather than
follow it. Here because every command loads this module anyway (and with `posix` only).
"""

import posix

from pyoci import OCI_VERSION, faults, jsonfast
from pyoci.errors import PyociError, does_not_exist

DEFAULT_ROOT = "/run/pyoci"
STATE_FILE = "state.json"
LOCK_FILE = "lock"
FIFO_FILE = "exec.fifo"
# state.json's "status" from the moment `create` made the state dir until it wrote the final
# state: with the lock held that is true; once its creator died (the lock is free) the create
# was abandoned, and `delete` undoes what it recorded (`ContainerState.abandoned`).
CREATING = "creating"
# Made by `start` before it opens exec.fifo: a fifo still there afterwards may have been
# taken by the init (a start killed before the unlink), and then the init's name tells.
START_MARK = "start"
# What a created init calls itself while it waits on exec.fifo (pyoci.process, pyoci-exec).
WAITING_INIT_COMM = b"pyoci:[2:INIT]"

# runc's rule: letters, digits and `_+-.`, not starting with a dot (so never `.` or `..`).
# A set, not a regex: `re` costs milliseconds to import on every command.
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")
# The id names the state directory `<root>/<id>`: one file name, so at most NAME_MAX bytes.
MAX_ID_LENGTH = 255


def default_root() -> str:
    """`/run/pyoci` for root; `$XDG_RUNTIME_DIR/pyoci` for an unprivileged user (who cannot
    write /run), as runc does."""
    if posix.geteuid() == 0:
        return DEFAULT_ROOT
    import os

    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    if not runtime_dir:
        raise PyociError(
            "--root: not given and XDG_RUNTIME_DIR is unset (an unprivileged "
            "user cannot use /run/pyoci)"
        )
    return os.path.join(runtime_dir, "pyoci")


def check_id(container_id: str) -> str:
    """Refuse ids that could escape the state root or confuse tools (`/`, `..`, empty), and
    ids too long to name the state directory (said here, not as the OS's ENAMETOOLONG)."""
    if not container_id or container_id[0] == "." or not _ID_CHARS.issuperset(container_id):
        raise PyociError(
            f"container id {container_id!r}: invalid "
            "(use letters, digits and _+-. , not starting with .)"
        )
    if len(container_id) > MAX_ID_LENGTH:
        raise PyociError(
            f"container id {container_id!r}: too long ({len(container_id)} characters; "
            f"at most {MAX_ID_LENGTH}, as it names a directory in --root)"
        )
    return container_id


def make_root(root: str) -> None:
    """mkdir -p `root` with mode 0700 for every directory it makes, parents included (as
    runc's MkdirAll(root, 0700)): the parents of a new --root are no more open than the root
    itself, so nobody else can list or plant anything on the way to it."""
    import os

    missing = []
    current = os.path.abspath(root)
    while not os.path.isdir(current):
        missing.append(current)
        current = os.path.dirname(current)
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            if not os.path.isdir(directory):
                raise PyociError(f"--root: {directory}: not a directory") from None
        except OSError as err:
            raise PyociError(f"--root: {directory}: {err.strerror.lower()}", err.errno) from None


def exists(path: str) -> bool:
    """os.path.exists without `os`."""
    try:
        posix.stat(path)
    except (OSError, ValueError):
        return False
    return True


def is_dir(path: str) -> bool:
    """os.path.isdir without `os`."""
    try:
        return posix.stat(path).st_mode & 0o170000 == 0o040000
    except (OSError, ValueError):
        return False


def _comm(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/comm", "rb") as f:
            return f.read().rstrip(b"\n")
    except OSError:
        return b""


def lock_held(state_dir: str) -> bool:
    """Someone holds the container's lock (a probe: taken and let go at once if free). No
    lock file: nobody holds it."""
    import fcntl  # here, not at the top: `state` of a created or running container never locks

    try:
        fd = posix.open(f"{state_dir}/{LOCK_FILE}", posix.O_RDONLY | posix.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        posix.close(fd)
    return False


def proc_start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (parsed after the last `)`), or None if the pid is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = data[data.rindex(b")") + 2 :].split()
    if fields[0] in (b"Z", b"X"):  # zombie or dead: the container has stopped
        return None
    return int(fields[19])


class ContainerState:
    """What `<root>/<id>/state.json` records, plus the derived status."""

    def __init__(self, root: str, data: dict) -> None:
        self.root = root
        self.data = data
        self.locked = False  # the caller holds the container's lock (Container._lock)

    @property
    def id(self) -> str:
        return self.data["id"]

    @property
    def pid(self) -> int:
        return self.data["pid"]

    @property
    def dir(self) -> str:
        return f"{self.root}/{self.id}"

    @property
    def fifo_path(self) -> str:
        return f"{self.dir}/{FIFO_FILE}"

    def init_alive(self) -> bool:
        """The init process is ours: alive and with the start time we recorded (none
        recorded proves nothing: a dead pid's start time is None too)."""
        pid, recorded = self.data.get("pid") or 0, self.data.get("pidStartTime")
        return pid > 0 and recorded is not None and proc_start_time(pid) == recorded

    @property
    def creating(self) -> bool:
        """The state of a create that has not finished (or never will: `abandoned`)."""
        return self.data.get("status") == CREATING

    def abandoned(self, locked: bool = False) -> bool:
        """A create's state whose creator is gone: it holds the lock until it is done, so a
        free lock (or one the caller holds, `locked`) means it was killed half-way."""
        return self.creating and (locked or self.locked or not lock_held(self.dir))

    def status(self, locked: bool = False) -> str:
        """Derived in one fixed order: creating (its creator alive, else stopped); gone →
        stopped; fifo and the init still waiting on it → created; frozen → paused; running.
        `locked`: the caller holds the container's lock (so it is not a creator's)."""
        if self.creating:
            return "stopped" if self.abandoned(locked) else CREATING
        if not self.init_alive():
            return "stopped"
        # A start killed after it opened exec.fifo (START_MARK made) and before the unlink
        # leaves the fifo while the init runs on: then the init's name says if it still waits.
        if exists(self.fifo_path) and (
            not exists(f"{self.dir}/{START_MARK}") or _comm(self.pid) == WAITING_INIT_COMM
        ):
            return "created"
        if self._frozen():
            return "paused"
        return "running"

    def _frozen(self) -> bool:
        freezer = self.data.get("freezerPath")
        if not freezer:
            return False
        try:
            with open(freezer) as f:
                value = f.read().strip()
        except OSError:
            return False
        return value in ("FROZEN", "FREEZING", "1")

    def oci_state(self) -> dict:
        """The state as `pyoci state` prints it: runtime-spec fields plus runc's extras."""
        status = self.status()
        out = {
            "ociVersion": OCI_VERSION,  # the runtime's spec version, not the bundle's (as runc)
            "id": self.id,
            "pid": self.pid if status != "stopped" else 0,
            "status": status,
            "bundle": self.data["bundle"],
            "rootfs": self.data["rootfs"],
            "created": self.data["created"],
            "owner": "",  # as runc's state; `list` names the owner
        }
        if self.data.get("annotations"):
            out["annotations"] = self.data["annotations"]
        return out

    def save(self) -> None:
        """Atomically replace state.json (temp file in the same dir + rename)."""
        path = f"{self.dir}/{STATE_FILE}"
        data = jsonfast.dumps(self.data).encode()
        write_atomic(path, data, before_rename=lambda: faults.point("state:before-rename"))


class CorruptState(PyociError):
    """state.json is there but is no state pyoci wrote: `delete --force` still removes the
    container, as far as it can be known without it."""


def incomplete(container_id: str) -> dict:
    """What stands for the state of a state dir without state.json: one a create killed
    before its first state write left, or a delete killed after its last unlink. Seen as a
    create's (`creating` while a creator holds the lock, else stopped), it is something
    `state` can tell and `delete` removes; `list` leaves it out (`list_ids`)."""
    return {"id": container_id, "status": CREATING, "pid": 0, "bundle": "", "rootfs": "",
            "created": ""}  # fmt: skip


def write_atomic(path: str, data: bytes, mode: int = 0o600, before_rename=None) -> None:
    """Replace `path` with `data`; OSError on failure, and then no temp file stays behind.
    `before_rename()` is called between the write and the rename (a fault point)."""
    directory, slash, name = path.rpartition("/")
    tmp = f"{directory}{slash}.{name}.{posix.urandom(6).hex()}.tmp"
    flags = posix.O_WRONLY | posix.O_CREAT | posix.O_EXCL | posix.O_NOFOLLOW | posix.O_CLOEXEC
    fd = posix.open(tmp, flags, mode)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[posix.write(fd, view) :]
        finally:
            posix.close(fd)
        if before_rename is not None:
            before_rename()
        posix.rename(tmp, path)
    except BaseException:
        try:
            posix.unlink(tmp)
        except OSError:
            pass
        raise


def load(root: str, container_id: str) -> ContainerState:
    """Read a container's state; an unknown id says `does not exist` (tools match on it)."""
    check_id(container_id)
    path = f"{root}/{container_id}/{STATE_FILE}"
    try:
        with open(path, "rb") as f:
            data = jsonfast.loads(f.read())
    except FileNotFoundError:
        if is_dir(f"{root}/{container_id}"):
            return ContainerState(root, incomplete(container_id))
        raise does_not_exist(container_id) from None
    except ValueError as err:
        msg = f'container "{container_id}": corrupt state file {path}: {err}'
        raise CorruptState(msg) from None
    problem = _shape_problem(data, container_id)
    if problem:
        raise CorruptState(f'container "{container_id}": corrupt state file {path}: {problem}')
    return ContainerState(root, data)


# What every command reads from state.json: a document without it (not pyoci's doing: its
# writes are atomic; a hand edit, a disk fault) is corrupt, said in one line, not a KeyError.
_REQUIRED = (("pid", int), ("bundle", str), ("rootfs", str), ("created", str))


def _shape_problem(data: object, container_id: str) -> str | None:
    if not isinstance(data, dict):
        return "not a JSON object"
    if data.get("id") != container_id:  # else `delete` would remove another container's dir
        return f"its id is {data.get('id')!r}"
    for key, kind in _REQUIRED:
        if not isinstance(data.get(key), kind) or data[key] is True or data[key] is False:
            return f"{key} missing or not {kind.__name__}"
    if not isinstance(data.get("pidStartTime", 0), int | None):
        return "pidStartTime not int"
    return None


def remove_state_dir(path: str) -> None:
    """The state dir holds only flat files we created; no shutil needed."""
    try:
        names = posix.listdir(path)
    except FileNotFoundError:
        return
    # state.json last: until the directory is gone, a delete killed half-way leaves a state
    # that `state`, `list` and another `delete` still understand.
    names.sort(key=lambda name: name == STATE_FILE)
    for name in names:
        faults.point(f"statedir:unlink:{name}")
        try:
            posix.unlink(f"{path}/{name}")
        except FileNotFoundError:
            pass
    faults.point("statedir:rmdir")
    try:
        posix.rmdir(path)
    except FileNotFoundError:
        pass
    except OSError as err:
        if err.errno != 39:  # ENOTEMPTY: a create made the id again once it was empty
            raise


def pid_namespace(pid: int) -> str | None:
    """`pid:[INODE]` of a process's pid namespace, or None once it is gone."""
    try:
        return posix.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def list_ids(root: str) -> list[str]:
    """Ids with a state file under `root`, sorted."""
    try:
        names = posix.listdir(root)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if exists(f"{root}/{n}/{STATE_FILE}"))


class Lock:
    """Exclusive flock of `<dir>/lock`: every mutating command holds it."""

    def __init__(self, state_dir: str) -> None:
        import fcntl

        path = f"{state_dir}/{LOCK_FILE}"
        self.fd = posix.open(path, posix.O_RDWR | posix.O_CREAT | posix.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
            # While we waited, the holder may have deleted the container (its lock file with
            # it) and a create may have made a new one of the same id: a lock on the old,
            # unlinked file guards nothing. FileNotFoundError: `lock_existing` says it is gone.
            held = posix.fstat(self.fd)
            now = posix.stat(path)  # FileNotFoundError too
            if (now.st_ino, now.st_dev) != (held.st_ino, held.st_dev):
                raise FileNotFoundError(2, "the container was deleted meanwhile", path)
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        if self.fd >= 0:
            posix.close(self.fd)
            self.fd = -1


def lock_existing(root: str, container_id: str) -> Lock:
    """Lock the state dir of an existing container."""
    check_id(container_id)
    state_dir = f"{root}/{container_id}"
    try:
        return Lock(state_dir)
    except FileNotFoundError:
        raise does_not_exist(container_id) from None
