"""pyoci.linux.mounts.parse_options: a `mounts[]` entry's options → the MountOp the child
executes. Checked against a model written per flag bit (the last option that names a bit
decides it), so that any mix of known options, propagation, recursive attributes and
filesystem data is covered, not only the lists the integration tests happen to use."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyoci.errors import PyociError
from pyoci.linux import mounts, remount
from pyoci.linux import syscalls as sc
from pyoci.linux.mounts import (
    FLAG_OPTIONS,
    PROPAGATION_OPTIONS,
    RECURSIVE_OPTIONS,
    MountOp,
    flag_names,
    parse_options,
)
from pyoci.spec import Mount

SETTINGS = settings(database=None, deadline=None, max_examples=200)

KNOWN = (
    set(FLAG_OPTIONS) | set(PROPAGATION_OPTIONS) | set(RECURSIVE_OPTIONS) | set(
        mounts.EXTENSION_OPTIONS)
)  # fmt: skip


def mount(options: list[str], fstype: str = "tmpfs", source: str = "tmpfs", **extra) -> Mount:
    return Mount({"destination": "/m", "type": fstype, "source": source, "options": options,
                  **extra}, "mounts[3]")  # fmt: skip


def parse(options: list[str], bundle: str = "/", **kw) -> MountOp:
    return parse_options(mount(options, **kw), bundle)


def refusal(options: list[str], bundle: str = "/", **kw) -> str:
    with pytest.raises(PyociError) as caught:
        parse(options, bundle, **kw)
    return caught.value.msg


# --- a few fixed points (what runc and the kernel mean by them) --------------------------------
def test_the_busybox_dev_tmpfs() -> None:
    op = parse(["nosuid", "strictatime", "mode=755", "size=65536k"])
    assert op.flags == sc.MS_NOSUID | sc.MS_STRICTATIME
    assert op.data == ["mode=755", "size=65536k"]
    assert not op.is_bind and op.source == "tmpfs" and op.type == "tmpfs"
    assert op.describe() == (
        "mount tmpfs to /m (type tmpfs, flags MS_NOSUID|MS_STRICTATIME, "
        "data 'mode=755,size=65536k')"
    )


def test_later_options_override_earlier_ones() -> None:
    assert parse(["ro", "rw"]).flags == 0
    assert parse(["rw", "ro"]).flags == sc.MS_RDONLY
    assert parse(["ro", "rw"]).cleared == sc.MS_RDONLY
    assert parse(["nosuid", "suid", "nodev"]).flags == sc.MS_NODEV


def test_rbind_is_bind_and_rec(tmp_path: Path) -> None:
    op = parse(["rbind", "ro"], str(tmp_path), fstype="none", source=".")
    assert op.is_bind and op.flags == sc.MS_BIND | sc.MS_REC | sc.MS_RDONLY
    assert op.source == str(tmp_path) and not op.is_file


def test_propagation_keeps_order_and_repeats() -> None:
    op = parse(["rslave", "private", "rslave"])
    assert op.propagation == [sc.MS_SLAVE | sc.MS_REC, sc.MS_PRIVATE, sc.MS_SLAVE | sc.MS_REC]
    assert op.flags == 0


def test_recursive_atime_modes_clear_the_whole_atime_field() -> None:
    op = parse(["rnoatime"])
    assert (op.rec_set, op.rec_clr) == (sc.MOUNT_ATTR_NOATIME, sc.MOUNT_ATTR__ATIME)
    op = parse(["rnoatime", "rrelatime"])
    assert (op.rec_set, op.rec_clr) == (sc.MOUNT_ATTR_RELATIME, sc.MOUNT_ATTR__ATIME)
    op = parse(["rro", "rrw"])
    assert (op.rec_set, op.rec_clr) == (0, sc.MOUNT_ATTR_RDONLY)


def test_flag_names() -> None:
    assert flag_names(0) == "0"
    assert flag_names(sc.MS_BIND | sc.MS_REC) == "MS_BIND|MS_REC"
    assert flag_names(sc.MS_RDONLY | sc.MS_SHARED | 1 << 30) == "MS_RDONLY|MS_SHARED"


# --- the model ---------------------------------------------------------------------------------
ALL_MS_BITS = [1 << b for b in range(32)]
ATIME = sc.MOUNT_ATTR__ATIME


def model(options: list[str], fstype: str) -> dict:
    """What the options mean, one bit at a time."""
    flags = cleared = 0
    for bit in ALL_MS_BITS:
        state = None  # untouched
        for option in options:
            if option in FLAG_OPTIONS:
                clear, flag = FLAG_OPTIONS[option]
                if flag & bit:
                    state = not clear
                    if clear:
                        cleared |= bit
        if state:
            flags |= bit
    bind = bool(flags & sc.MS_BIND) or fstype == "bind"
    if bind:
        flags |= sc.MS_BIND
    rec_set = rec_clr = 0
    for bit in [1 << b for b in range(32) if not (1 << b) & ATIME]:
        last = None
        for option in options:
            if option in RECURSIVE_OPTIONS:
                set_, clr = RECURSIVE_OPTIONS[option]
                if set_ & bit:
                    last = "set"
                elif clr & bit:
                    last = "clr"
        rec_set |= bit if last == "set" else 0
        rec_clr |= bit if last == "clr" else 0
    atime = [RECURSIVE_OPTIONS[o][0] for o in options if o in RECURSIVE_OPTIONS
             and RECURSIVE_OPTIONS[o][1] & ATIME]  # fmt: skip
    if atime:  # mount_setattr(2): a new atime mode clears the field and sets one value
        rec_set |= atime[-1]
        rec_clr |= ATIME
    return {
        "flags": flags,
        "cleared": cleared,
        "is_bind": bind,
        "propagation": [PROPAGATION_OPTIONS[o] for o in options if o in PROPAGATION_OPTIONS],
        "rec": (rec_set, rec_clr),
        "data": [o for o in options if o not in KNOWN],
    }


_DATA = st.text(alphabet="abcdefgimnorstuxz=0123456789,_-", min_size=1, max_size=12).filter(
    lambda s: s not in KNOWN
)
_OPTION = st.one_of(
    st.sampled_from(sorted(FLAG_OPTIONS)),
    st.sampled_from(sorted(PROPAGATION_OPTIONS)),
    st.sampled_from(sorted(RECURSIVE_OPTIONS)),
    _DATA,
)


@pytest.fixture(scope="module")
def source_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bindsrc")


@SETTINGS
@given(options=st.lists(_OPTION, max_size=12), fstype=st.sampled_from(["tmpfs", "bind", "proc"]))
def test_any_combination_of_options_matches_the_model(source_dir: Path, options, fstype) -> None:
    op = parse(options, str(source_dir), fstype=fstype, source=".")
    expected = model(options, fstype)
    assert op.flags == expected["flags"], flag_names(op.flags ^ expected["flags"])
    assert op.cleared == expected["cleared"]
    assert op.is_bind == expected["is_bind"]
    assert op.propagation == expected["propagation"]
    assert (op.rec_set, op.rec_clr) == expected["rec"]
    assert op.data == expected["data"]  # unknown options reach the filesystem, in order
    assert not op.tmpcopyup and op.idmap == ""
    assert op.source == (str(source_dir) if op.is_bind else ".")


@SETTINGS
@given(options=st.lists(st.sampled_from(sorted(FLAG_OPTIONS)), min_size=1, max_size=10))
def test_the_last_of_a_set_clear_pair_wins(source_dir: Path, options: list[str]) -> None:
    op = parse(options, str(source_dir), fstype="tmpfs", source=".")
    for option, (_, flag) in FLAG_OPTIONS.items():
        if not flag or option not in options or flag & (sc.MS_BIND | sc.MS_REC):
            continue
        last = max(i for i, o in enumerate(options) if FLAG_OPTIONS[o][1] & flag)
        last_clears = FLAG_OPTIONS[options[last]][0]
        assert bool(op.flags & flag) == (not last_clears), (option, options)


# --- bind mounts and the extensions ------------------------------------------------------------
def test_bind_source_is_relative_to_the_bundle(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "file").write_text("x")
    op = parse(["bind"], str(tmp_path), fstype="none", source="data/../data/")
    assert op.source == str(tmp_path / "data") and not op.is_file
    op = parse([], str(tmp_path), fstype="bind", source="file")
    assert op.is_bind and op.is_file and op.flags == sc.MS_BIND
    op = parse(["bind"], "/elsewhere", fstype="none", source=str(tmp_path / "file"))
    assert op.source == str(tmp_path / "file")


def test_bind_errors_name_the_field(tmp_path: Path) -> None:
    assert refusal(["bind"], str(tmp_path), fstype="none", source="") == (
        "mounts[3].source: a bind mount needs a source"
    )
    assert refusal(["rbind"], str(tmp_path), fstype="none", source="missing") == (
        f"mounts[3].source: {tmp_path}/missing: no such file or directory"
    )


def test_a_mount_that_is_not_a_bind_needs_a_type() -> None:
    assert refusal(["ro"], fstype="", source="x") == (
        "mounts[3].type: required for a mount that is not a bind mount"
    )


def test_an_empty_option_is_refused_by_index() -> None:
    assert refusal(["ro", "", "nosuid"]) == "mounts[3].options[1]: empty option"


def test_tmpcopyup_only_on_tmpfs() -> None:
    assert parse(["tmpcopyup", "mode=755"]).tmpcopyup
    assert refusal(["tmpcopyup"], fstype="proc", source="proc") == (
        "mounts[3].options: tmpcopyup is only valid for tmpfs mounts"
    )


def test_idmap_only_on_bind_mounts(tmp_path: Path) -> None:
    for option in ("idmap", "ridmap"):
        op = parse([option], str(tmp_path), fstype="bind", source=".")
        assert op.idmap == option
        assert refusal([option]) == (
            "mounts[3].options: idmapped mounts are only supported for bind mounts"
        )
    mapping = [{"containerID": 0, "hostID": 1000, "size": 1}]
    op = parse([], str(tmp_path), fstype="bind", source=".", uidMappings=mapping)
    assert op.idmap == "idmap"  # mappings without the option: idmap implied
    assert refusal([], uidMappings=mapping) == (
        "mounts[3].options: idmapped mounts are only supported for bind mounts"
    )


def test_describe_names_source_target_type_flags() -> None:
    op = MountOp("mounts[0]", "/x", "", "")
    assert op.describe() == "mount none to /x (type none, flags 0)"
    assert op.describe(sc.MS_BIND) == "mount none to /x (type none, flags MS_BIND)"


def test_remount_mask_excludes_what_only_mount2_understands() -> None:
    for flag in (sc.MS_BIND, sc.MS_REC, sc.MS_REMOUNT, sc.MS_SHARED, sc.MS_PRIVATE, sc.MS_MOVE):
        assert not remount.REMOUNT_MASK & flag
    for option in ("ro", "nosuid", "nodev", "noexec", "noatime", "relatime", "nosymfollow"):
        assert remount.REMOUNT_MASK & FLAG_OPTIONS[option][1]


def test_locked_flags_of_a_real_mount() -> None:
    """statvfs of the filesystem holding this file: only the lockable MS_* bits come back."""
    flags = remount.existing_locked_flags(os.path.dirname(__file__))
    lockable = 0
    for _, ms in remount.LOCKED_ST_FLAGS:
        lockable |= ms
    assert flags & ~lockable == 0
    assert bool(flags & sc.MS_RDONLY) == bool(os.statvfs(__file__).f_flag & os.ST_RDONLY)
