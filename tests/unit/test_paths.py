"""pyoci.linux.paths without root: openat2(RESOLVE_IN_ROOT) works for any user, so a tmp
directory with hostile symlinks (to the host's paths, `..` chains, loops, dangling links) stands
in for an untrusted rootfs. The properties: whatever the path, nothing is created or opened
outside the root; and what is created is what the kernel resolves the path to inside the root
(a model of RESOLVE_IN_ROOT that creates missing components)."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyoci.linux.paths import _normalize, fd_path, make_in_root, open_in_root

SETTINGS = settings(database=None, deadline=None, max_examples=120)


# --- _normalize ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path, expected",
    [
        ("/a/b", ["a", "b"]),
        ("a//b/./c/", ["a", "b", "c"]),
        ("/../../a", ["a"]),
        ("/a/../..", []),
        ("", []),
        ("/a/b/../c", ["a", "c"]),
    ],
)
def test_normalize(path: str, expected: list[str]) -> None:
    assert _normalize(path.split("/")) == expected


@SETTINGS
@given(st.lists(st.sampled_from(["a", "b", "..", ".", "", "c.d", "..."]), max_size=12))
def test_normalize_is_normpath_clamped_at_the_root(parts: list[str]) -> None:
    out = _normalize(parts)
    assert out == [p for p in os.path.normpath("/" + "/".join(parts)).split("/") if p]
    assert _normalize(out) == out and not {"", ".", ".."} & set(out)


# --- a hostile rootfs --------------------------------------------------------------------------
class Rootfs:
    """`base/root` is the rootfs; `base/outside` is the host directory it must never reach."""

    def __init__(self, base: Path, dangling_dotdot: bool = True) -> None:
        self.base = base
        self.root = base / "root"
        self.outside = base / "outside"
        self.outside.mkdir()
        (self.root / "a" / "b").mkdir(parents=True)
        (self.root / "file").write_text("x")
        links = {
            "abs": str(self.outside),  # the host's path, absolute
            "absroot": "/",
            "up": "../outside",  # relative, climbing out of the root on the host
            "upup": "../../../../../..",
            "back": "a/b/../../..",  # an existing dir reached through ..
            "a/top": "../..",
            "s": "a/b",  # a symlink to an existing directory
            "dangle": "a/new",  # dangling, relative
            "dabs": "/a/fresh",  # dangling, absolute (inside the root)
            "dchain": "dabs/more",  # dangling through another dangling link
            "loop": "loop",
            "tofile": "file",
        }
        if dangling_dotdot:
            links["a/b/dl"] = "../m"  # dangling, relative, with ..
            links["dup"] = "../outside/new"  # dangling; on the host it would be outside
        for name, target in links.items():
            os.symlink(target, self.root / name)
        self.fd = os.open(self.root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    def close(self) -> None:
        os.close(self.fd)

    def outside_tree(self) -> list[str]:
        """Everything in `base` that is not the rootfs (must never change)."""
        found = []
        for top, dirs, files in os.walk(self.base):
            if top == str(self.base):
                dirs.remove("root")
            found += [os.path.join(top, n) for n in dirs + files]
        return sorted(found)

    def model(self, path: str) -> str | int:
        """Where RESOLVE_IN_ROOT takes `path`, missing components created as directories
        (the path in the host's view), or the errno the walk meets."""
        stack: list[str] = []
        todo = path.split("/")
        hops = 0
        while todo:
            part = todo.pop(0)
            here = os.path.join(self.root, *stack)
            if os.path.lexists(here) and not os.path.isdir(here):
                return errno.ENOTDIR  # (`file/` too: a trailing slash needs a directory)
            if part in ("", "."):
                continue
            if part == "..":
                if stack:
                    stack.pop()
                continue
            full = os.path.join(here, part)
            if os.path.islink(full):
                hops += 1
                if hops > 40:
                    return errno.ELOOP
                target = os.readlink(full)
                if target.startswith("/"):
                    stack = []
                todo = target.split("/") + todo
                continue
            stack.append(part)
        return os.path.join(self.root, *stack) if stack else str(self.root)


@pytest.fixture
def rootfs(tmp_path: Path):
    r = Rootfs(tmp_path)
    yield r
    r.close()


def where(fd: int) -> str:
    try:
        return os.readlink(fd_path(fd))
    finally:
        os.close(fd)


# --- fixed cases -------------------------------------------------------------------------------
def test_existing_path_is_opened_not_created(rootfs: Rootfs) -> None:
    assert where(make_in_root(rootfs.fd, "/a/b")) == str(rootfs.root / "a" / "b")
    assert where(make_in_root(rootfs.fd, "/")) == str(rootfs.root)


def test_missing_parents_are_directories_and_the_last_a_file_when_asked(rootfs: Rootfs) -> None:
    target = rootfs.root / "x" / "y" / "z"
    assert where(make_in_root(rootfs.fd, "/x/y/z", is_file=True)) == str(target)
    assert target.is_file() and target.stat().st_size == 0 and (target.stat().st_mode & 0o777)
    assert (rootfs.root / "x" / "y").is_dir()


def test_directory_mode(rootfs: Rootfs) -> None:
    old = os.umask(0)
    try:
        os.close(make_in_root(rootfs.fd, "/m1/m2", mode=0o700))
    finally:
        os.umask(old)
    assert (rootfs.root / "m1").stat().st_mode & 0o777 == 0o700
    assert (rootfs.root / "m1" / "m2").stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize(
    "path, inside",
    [
        ("/abs/etc", "home"),  # absolute host path: followed inside the root
        ("/up/new", "outside/new"),  # ../outside: clamped at the root
        ("/upup/x", "x"),
        ("/back/y", "y"),
        ("/a/top/z", "z"),
        ("/dangle", "a/new"),
        ("/dangle/deeper", "a/new/deeper"),
        ("/dabs", "a/fresh"),
        ("/dchain", "a/fresh/more"),
        ("/dup", "outside/new"),
        ("/../../../x", "x"),
    ],
)
def test_symlinks_are_followed_inside_the_root(rootfs: Rootfs, path: str, inside: str) -> None:
    if inside == "home":
        inside = str(rootfs.outside).lstrip("/") + "/etc"
    before = rootfs.outside_tree()
    assert where(make_in_root(rootfs.fd, path)) == str(rootfs.root / inside)
    assert rootfs.outside_tree() == before
    assert not any(rootfs.outside.iterdir())


def test_a_dangling_link_as_the_file_creates_its_target_inside(rootfs: Rootfs) -> None:
    assert where(make_in_root(rootfs.fd, "/dabs", is_file=True)) == str(rootfs.root / "a/fresh")
    assert (rootfs.root / "a" / "fresh").is_file()


@pytest.mark.parametrize(
    "path, code",
    [("/loop", errno.ELOOP), ("/loop/x", errno.ELOOP), ("/file/x", errno.ENOTDIR),
     ("/tofile/x", errno.ENOTDIR)],
)  # fmt: skip
def test_loops_and_files_are_errors(rootfs: Rootfs, path: str, code: int) -> None:
    with pytest.raises(OSError) as caught:
        make_in_root(rootfs.fd, path)
    assert caught.value.errno == code


def test_a_long_dangling_chain_is_the_kernels_eloop(tmp_path: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    for i in range(45):
        os.symlink(f"/l{i + 1}/x", root / f"l{i}")
    fd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    try:
        with pytest.raises(OSError) as caught:
            make_in_root(fd, "/l0")
        assert caught.value.errno == errno.ELOOP
    finally:
        os.close(fd)


def test_a_link_the_kernel_finds_dangling_but_that_loops_lexically_ends(tmp_path: Path) -> None:
    """d -> e/../d: the walk creates the missing `e` (as for any missing component), after
    which `d` loops for the kernel too: ELOOP, not a hang."""
    root = tmp_path / "r"
    root.mkdir()
    os.symlink("e/../d", root / "d")
    fd = os.open(root, os.O_PATH | os.O_DIRECTORY)

    def hung(*_):
        raise AssertionError("make_in_root never gave up")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(5)
    try:
        with pytest.raises(OSError) as caught:
            make_in_root(fd, "/d/x")
        assert caught.value.errno == errno.ELOOP
        assert sorted(os.listdir(root)) == ["d", "e"]
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        os.close(fd)


def test_open_in_root_clamps_and_raises_for_missing(rootfs: Rootfs) -> None:
    assert where(open_in_root(rootfs.fd, "/upup")) == str(rootfs.root)
    assert where(open_in_root(rootfs.fd, "")) == str(rootfs.root)
    with pytest.raises(FileNotFoundError):
        open_in_root(rootfs.fd, "/abs")  # the host's directory does not exist in the root


@pytest.mark.parametrize("path", ["/s/dl/c", "/a/top/../x", "/s/../y"])
def test_created_path_is_where_the_kernel_resolves_it(rootfs: Rootfs, path: str) -> None:
    expected = rootfs.model(path)
    assert where(make_in_root(rootfs.fd, path)) == expected
    assert where(open_in_root(rootfs.fd, path)) == expected


# --- properties --------------------------------------------------------------------------------
_NAMES = ["a", "b", "new", "x", "file", "abs", "absroot", "up", "upup", "back", "top", "s",
          "dangle", "dabs", "dchain", "loop", "tofile", "dl", "dup"]  # fmt: skip


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("roots")


def _fresh(scratch: Path, dangling_dotdot: bool = True) -> Rootfs:
    return Rootfs(Path(tempfile.mkdtemp(dir=scratch)), dangling_dotdot)


def _path(parts: list[str], is_file: bool) -> str:
    """A file's path does not end in `/` or `/.` (that would name a directory)."""
    while is_file and len(parts) > 1 and parts[-1] in ("", "."):
        parts = parts[:-1]
    return "/" + "/".join(parts)


@SETTINGS
@given(
    parts=st.lists(st.sampled_from([*_NAMES, "..", ".", ""]), min_size=1, max_size=8),
    is_file=st.booleans(),
)
def test_nothing_is_ever_created_or_opened_outside_the_root(scratch, parts, is_file) -> None:
    r = _fresh(scratch)
    try:
        before = r.outside_tree()
        path = _path(parts, is_file)
        try:
            fd = make_in_root(r.fd, path, is_file=is_file)
        except OSError as err:
            assert err.errno in (errno.ENOTDIR, errno.ELOOP), (path, err)
        else:
            got = where(fd)
            assert got == str(r.root) or got.startswith(str(r.root) + "/"), (path, got)
            if ".." not in parts:  # (with `..`, the lexical resolution above gets in the way)
                # Idempotent: asked again, the same file.
                assert where(make_in_root(r.fd, path, is_file=is_file)) == got
        assert r.outside_tree() == before, path
        assert not any(r.outside.iterdir()), path
    finally:
        r.close()
        shutil.rmtree(r.base)


@SETTINGS
@given(
    parts=st.lists(st.sampled_from([n for n in _NAMES if n not in ("dl", "dup")] + ["", "."]),
                   min_size=1, max_size=8),
    is_file=st.booleans(),
)  # fmt: skip
def test_created_path_matches_resolve_in_root_without_dotdot(scratch, parts, is_file) -> None:
    """Without `..` in the path or in a dangling link (the bug above), the created path is
    exactly where the kernel resolves the path, and the kernel then finds it there."""
    r = _fresh(scratch, dangling_dotdot=False)
    try:
        path = _path(parts, is_file)
        expected = r.model(path)
        try:
            got = where(make_in_root(r.fd, path, is_file=is_file))
        except OSError as err:
            assert err.errno == expected, (path, err)
        else:
            assert got == expected, path
            assert where(open_in_root(r.fd, path)) == expected
            if is_file and os.path.isfile(got) and not os.path.getsize(got):
                assert not os.path.isdir(got)
    finally:
        r.close()
        shutil.rmtree(r.base)
