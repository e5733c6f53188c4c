"""pyoci.spec: config.json → the typed model, and the path-precise error `create` prints for
each field it refuses (`process.rlimits[1].type: ...`). The cross-field rules shared with
`pyoci validate` are tests/unit/test_rules.py's; these are the type, range and shape checks
the model makes itself, plus `load` reading a bundle."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyoci import spec as speclib
from pyoci.errors import PyociError
from pyoci.spec import CAP_NUMBER, Mount, Process, Spec

SETTINGS = settings(database=None, deadline=None, max_examples=150)

BASE = {
    "ociVersion": "1.2.0",
    "root": {"path": "rootfs"},
    "process": {"args": ["sh"], "cwd": "/", "env": ["PATH=/bin"]},
}


def config(**patches: object) -> dict:
    """BASE with dotted paths set (`process.user.uid=5`); a value of DELETE removes the key."""
    out = copy.deepcopy(BASE)
    for dotted, value in patches.items():
        *parents, last = dotted.split("__")
        node = out
        for key in parents:
            node = node.setdefault(key, {})
        if value is DELETE:
            node.pop(last, None)
        else:
            node[last] = value
    return out


DELETE = object()


def refusal(raw: object, bundle: str = "/b") -> str:
    with pytest.raises(PyociError) as caught:
        Spec(raw, bundle)  # type: ignore[arg-type]
    return caught.value.msg


# --- what a valid config becomes ---------------------------------------------------------------
def test_a_minimal_config() -> None:
    spec = Spec(config(process=None), "/b")
    assert spec.process is None and spec.mounts == [] and spec.namespaces == []
    assert spec.root_path == "/b/rootfs" and not spec.root_readonly
    assert spec.hooks == {} and spec.annotations == {} and spec.sysctl == {}
    assert spec.cgroups_path is None and spec.rootfs_propagation is None


@pytest.mark.parametrize(
    "bundle, path, expected",
    [("/b", "rootfs", "/b/rootfs"), ("/b", "../r/./x/", "/r/x"), ("/b", "/abs/root", "/abs/root")],
)
def test_root_path_is_relative_to_the_bundle(bundle: str, path: str, expected: str) -> None:
    assert Spec(config(root__path=path), bundle).root_path == expected


def test_process_fields() -> None:
    raw = config(
        process__terminal=True,
        process__consoleSize={"height": 24, "width": 80},
        process__user={"uid": 1000, "gid": 100, "umask": 0o022, "additionalGids": [5, 6],
                       "username": "me"},
        process__capabilities={"bounding": ["CAP_KILL", "CAP_CHOWN"], "permitted": ["CAP_KILL"]},
        process__rlimits=[{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 4096}],
        process__noNewPrivileges=True,
        process__oomScoreAdj=-1000,
    )  # fmt: skip
    p = Spec(raw, "/b").process
    assert p.terminal and p.console_size == (24, 80)
    assert (p.user.uid, p.user.gid, p.user.umask, p.user.additional_gids, p.user.username) == (
        1000, 100, 0o022, [5, 6], "me")  # fmt: skip
    assert p.capabilities == {
        "bounding": [CAP_NUMBER["CAP_KILL"], CAP_NUMBER["CAP_CHOWN"]],
        "permitted": [CAP_NUMBER["CAP_KILL"]],
    }
    assert [(r.type, r.resource, r.soft, r.hard) for r in p.rlimits] == [
        ("RLIMIT_NOFILE", 7, 1024, 4096)
    ]
    assert p.no_new_privileges and p.oom_score_adj == -1000 and p.warnings == []


def test_process_defaults() -> None:
    p = Spec(config(), "/b").process
    assert not p.terminal and p.console_size is None
    assert (p.user.uid, p.user.gid, p.user.umask, p.user.additional_gids) == (0, 0, None, [])
    assert p.capabilities is None and p.rlimits == [] and p.oom_score_adj is None


def test_an_unknown_capability_set_is_ignored_and_grants_nothing() -> None:
    """config.md, Extensibility: runtimes MUST NOT fail on an unknown property, MUST ignore it.
    A misspelt set (`effectiv`) is ignored, and the set it meant stays empty."""
    raw = config(process__capabilities={"effectiv": ["CAP_KILL"], "": [1], "bounding": []})
    assert Spec(raw, "/b").process.capabilities == {"bounding": []}


def test_capability_numbers_are_the_kernels() -> None:
    assert CAP_NUMBER["CAP_CHOWN"] == 0 and CAP_NUMBER["CAP_SYS_ADMIN"] == 21
    assert CAP_NUMBER["CAP_CHECKPOINT_RESTORE"] == 40 and len(CAP_NUMBER) == 41


def test_rlimit_numbers_are_the_kernels() -> None:
    import resource

    checked = 0
    for name, number in speclib.RLIMITS.items():
        if hasattr(resource, name):  # (Python has no RLIMIT_LOCKS)
            assert getattr(resource, name) == number, name
            checked += 1
    assert checked >= 14
    assert sorted(speclib.RLIMITS.values()) == list(range(16))  # asm-generic/resource.h


@pytest.mark.parametrize(
    "env, expected",
    [
        (["A=1", "B=2"], {"A": "1", "B": "2"}),
        (["A=1", "A=2"], {"A": "2"}),  # a later duplicate wins, as in a shell
        (["A=b=c"], {"A": "b=c"}),
        (["NOEQUALS", "E="], {"E": ""}),
    ],
)
def test_env_dict(env: list[str], expected: dict) -> None:
    assert Spec(config(process__env=env), "/b").process.env_dict() == expected


def test_namespaces_new_and_joined() -> None:
    raw = config(linux={"namespaces": [{"type": "pid"}, {"type": "network", "path": "/run/n"}]})
    spec = Spec(raw, "/b")
    assert spec.has_new("pid") and not spec.has_new("network") and not spec.has_new("ipc")
    assert spec.namespace("network").path == "/run/n" and spec.namespace("ipc") is None


def test_user_namespace_with_mappings() -> None:
    m = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    raw = config(linux={"namespaces": [{"type": "user"}], "uidMappings": m, "gidMappings": m})
    spec = Spec(raw, "/b")
    assert [x.line() for x in spec.uid_mappings] == ["0 100000 65536\n"]


def test_devices() -> None:
    raw = config(linux={"devices": [
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o20666},
        {"path": "/dev/fifo", "type": "p"},
    ]})  # fmt: skip
    fuse, fifo = Spec(raw, "/b").devices
    assert (fuse.type, fuse.major, fuse.minor, fuse.file_mode) == ("c", 10, 229, 0o666)
    assert (fifo.major, fifo.minor, fifo.file_mode) == (None, None, None)


def test_mounts_and_hooks() -> None:
    raw = config(
        mounts=[{"destination": "/tmp", "type": "tmpfs", "options": ["nosuid"]},
                {"destination": "/data", "source": "/host", "options": ["rbind"]}],
        hooks={"prestart": [{"path": "/bin/true", "args": ["true"], "timeout": 5}],
               "poststop": []},
    )  # fmt: skip
    spec = Spec(raw, "/b")
    assert [(m.destination, m.type, m.source, m.options, m.path) for m in spec.mounts] == [
        ("/tmp", "tmpfs", "", ["nosuid"], "mounts[0]"),
        ("/data", "", "/host", ["rbind"], "mounts[1]"),
    ]
    assert list(spec.hooks) == ["prestart"]  # an empty list is no hooks


# --- what it refuses, naming the field ---------------------------------------------------------
CASES = [
    (config(ociVersion=DELETE), "ociVersion: is required"),
    (config(ociVersion=1), "ociVersion: must be a string, not an integer"),
    (config(root="rootfs"), "root: must be an object, not a string"),
    (config(root__path=DELETE), "root.path: is required"),
    (config(root__path=""), "root.path: is required"),
    (config(root__readonly="yes"), "root.readonly: must be a boolean, not a string"),
    (config(process=[]), "process: must be an object, not an array"),
    (config(process__args=[]), "process.args: must not be empty"),
    (config(process__args=DELETE), "process.args: must not be empty"),
    (config(process__args=["sh", 1]), "process.args[1]: must be a string, not an integer"),
    (config(process__env="A=1"), "process.env: must be an array, not a string"),
    (config(process__cwd=DELETE), "process.cwd: is required"),
    (config(process__cwd="tmp"), "process.cwd: 'tmp' must be an absolute path"),
    (config(process__terminal="true"), "process.terminal: must be a boolean, not a string"),
    (config(process__consoleSize={"height": -1}),
     "process.consoleSize.height: -1 is out of range [0, 65535]"),
    (config(process__user__uid=-1), "process.user.uid: -1 is out of range [0, 4294967295]"),
    (config(process__user__uid=2**32),
     "process.user.uid: 4294967296 is out of range [0, 4294967295]"),
    (config(process__user__uid=True), "process.user.uid: must be an integer, not a boolean"),
    (config(process__user__uid=1.5), "process.user.uid: must be an integer, not a number"),
    (config(process__user__gid="0"), "process.user.gid: must be an integer, not a string"),
    (config(process__user__umask=0o10000), "process.user.umask: 4096 is out of range [0, 4095]"),
    (config(process__user__additionalGids=[1, "2"]),
     "process.user.additionalGids[1]: must be an integer, not a string"),
    (config(process__user__username=7), "process.user.username: must be a string, not an integer"),
    (config(process__capabilities={"bounding": ["CAP_KILL", "CAP_NOPE"]}),
     "process.capabilities.bounding[1]: unknown capability 'CAP_NOPE'"),
    (config(process__capabilities={"effective": "CAP_KILL"}),
     "process.capabilities.effective: must be an array, not a string"),
    (config(process__rlimits=[{"type": "RLIMIT_FOO", "soft": 1, "hard": 1}]),
     "process.rlimits[0].type: unknown rlimit type 'RLIMIT_FOO'"),
    (config(process__rlimits=["x"]), "process.rlimits[0]: must be an object, not a string"),
    (config(process__rlimits=[{"type": "RLIMIT_CORE", "soft": 10, "hard": 5}]),
     "process.rlimits[0]: soft limit 10 exceeds hard limit 5"),
    (config(process__rlimits=[{"type": "RLIMIT_CORE", "soft": 2**64, "hard": 2**64}]),
     f"process.rlimits[0].soft: {2**64} is out of range [0, {2**64 - 1}]"),
    (config(process__rlimits=[{"type": "RLIMIT_CORE", "soft": 1, "hard": 1},
                              {"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1},
                              {"type": "RLIMIT_CORE", "soft": 2, "hard": 2}]),
     "process.rlimits[2].type: RLIMIT_CORE duplicated (also at process.rlimits[0])"),
    # F13: REQUIRED (taken as 0 they made the init fail with "Too many open files")
    (config(process__rlimits=[{"type": "RLIMIT_NOFILE", "hard": 5}]),
     "process.rlimits[0].soft: is required"),
    (config(process__rlimits=[{"type": "RLIMIT_NOFILE", "soft": 5, "hard": None}]),
     "process.rlimits[0].hard: is required"),
    # F10: keys that would not read back are quoted, as validate does (rules.dotted)
    (config(annotations={"": None}), 'annotations[""]: must be a string, not null'),
    (config(annotations={"a: b": 1}), 'annotations["a: b"]: must be a string, not an integer'),
    # F12: linux.resources is type-checked before anything is applied (shapes.py)
    (config(linux={"resources": {"pids": {"limit": "12"}}}),
     "linux.resources.pids.limit: must be an integer, not a string"),
    (config(linux={"resources": {"pids": {"limit": []}}}),
     "linux.resources.pids.limit: must be an integer, not an array"),
    (config(linux={"resources": {"memory": {"limit": 1.5}}}),
     "linux.resources.memory.limit: must be an integer, not a number"),
    (config(linux={"resources": {"cpu": {"cpus": 3}}}),
     "linux.resources.cpu.cpus: must be a string, not an integer"),
    (config(linux={"resources": {"devices": [{"allow": "yes"}]}}),
     "linux.resources.devices[0].allow: must be a boolean, not a string"),
    (config(linux={"resources": {"blockIO": {"throttleReadBpsDevice": [{"rate": True}]}}}),
     "linux.resources.blockIO.throttleReadBpsDevice[0].rate: must be an integer, not a boolean"),
    (config(linux={"resources": {"unified": {"memory.max": 5}}}),
     "linux.resources.unified.memory.max: must be a string, not an integer"),
    (config(linux={"resources": {"rdma": {"mlx 5": {"hcaHandles": "x"}}}}),
     'linux.resources.rdma["mlx 5"].hcaHandles: must be an integer, not a string'),
    (config(linux={"resources": {"hugepageLimits": {}}}),
     "linux.resources.hugepageLimits: must be an array, not an object"),
    (config(linux={"resources": []}), "linux.resources: must be an object, not an array"),
    # F15: the other parts applied from the raw document are typed first too (shapes.py); a
    # null entry of an array or a map says nothing and is refused, as validate refuses it
    (config(linux={"resources": {"hugepageLimits": [None]}}),
     "linux.resources.hugepageLimits[0]: must be an object, not null"),
    (config(linux={"resources": {"unified": {"memory.max": None}}}),
     "linux.resources.unified.memory.max: must be a string, not null"),
    (config(linux={"seccomp": {"defaultAction": "SCMP_ACT_ALLOW",
                               "syscalls": [{"names": [5], "action": "SCMP_ACT_ERRNO"}]}}),
     "linux.seccomp.syscalls[0].names[0]: must be a string, not an integer"),
    (config(linux={"seccomp": {"syscalls": [{"names": ["getpid"], "args": [{"index": "0"}]}]}}),
     "linux.seccomp.syscalls[0].args[0].index: must be an integer, not a string"),
    (config(linux={"seccomp": {"defaultAction": ["SCMP_ACT_ALLOW"]}}),
     "linux.seccomp.defaultAction: must be a string, not an array"),
    (config(linux={"timeOffsets": {"monotonic": {"secs": {}}}}),
     "linux.timeOffsets.monotonic.secs: must be an integer, not an object"),
    (config(linux={"timeOffsets": {"boottime": None}}),
     "linux.timeOffsets.boottime: must be an object, not null"),
    (config(linux={"intelRdt": {"closID": [1]}}),
     "linux.intelRdt.closID: must be a string, not an array"),
    (config(linux={"personality": {"domain": "LINUX", "flags": "x"}}),
     "linux.personality.flags: must be an array, not a string"),
    (config(linux={"netDevices": {"eth1": {"name": 3}}}),
     "linux.netDevices.eth1.name: must be a string, not an integer"),
    (config(process__scheduler={"policy": {}}),
     "process.scheduler.policy: must be a string, not an object"),
    (config(process__ioPriority={"class": "IOPRIO_CLASS_BE", "priority": [1]}),
     "process.ioPriority.priority: must be an integer, not an array"),
    (config(process__execCPUAffinity={"initial": 7}),
     "process.execCPUAffinity.initial: must be a string, not an integer"),
    (config(process__user__additionalGids=[1, -2]),
     "process.user.additionalGids[1]: -2 is out of range [0, 4294967295]"),
    (config(mounts=[{"destination": ""}]), "mounts[0].destination: must not be empty"),
    (config(process__oomScoreAdj=1001), "process.oomScoreAdj: 1001 is out of range [-1000, 1000]"),
    (config(process__noNewPrivileges=1),
     "process.noNewPrivileges: must be a boolean, not an integer"),
    (config(hostname=["h"]), "hostname: must be a string, not an array"),
    (config(mounts={}), "mounts: must be an array, not an object"),
    (config(mounts=[{"destination": "/a"}, "x"]), "mounts[1]: must be an object, not a string"),
    (config(mounts=[{"type": "tmpfs"}]), "mounts[0].destination: is required"),
    (config(mounts=[{"destination": "/a", "options": "ro"}]),
     "mounts[0].options: must be an array, not a string"),
    (config(mounts=[{"destination": "/a", "options": ["ro", None]}]),
     "mounts[0].options[1]: must be a string, not null"),
    (config(mounts=[{"destination": "/a", "uidMappings": [{"containerID": 0, "hostID": 0}]}]),
     "mounts[0].uidMappings[0].size: must be a positive integer"),
    (config(mounts=[{"destination": "/a", "gidMappings": [{"size": 0}]}]),
     "mounts[0].gidMappings[0].size: must be a positive integer"),
    (config(annotations={"a": "1", "b": 2}), "annotations.b: must be a string, not an integer"),
    (config(hooks={"prestart": [{"path": "bin/x"}]}),
     "hooks.prestart[0].path: 'bin/x' must be an absolute path"),
    (config(hooks={"poststop": [{}]}), "hooks.poststop[0].path: '' must be an absolute path"),
    (config(hooks={"createRuntime": [{"path": "/x", "timeout": 0}]}),
     "hooks.createRuntime[0].timeout: 0 is out of range [1, 2147483647]"),
    (config(hooks={"poststart": [{"path": "/x", "env": [1]}]}),
     "hooks.poststart[0].env[0]: must be a string, not an integer"),
    (config(linux={"namespaces": [{"type": "pid"}, {"type": "mnt"}]}),
     "linux.namespaces[1].type: unknown namespace type 'mnt'"),
    (config(linux={"namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "pid"}]}),
     "linux.namespaces[2].type: pid duplicated (also at linux.namespaces[0])"),
    (config(linux={"namespaces": [{"type": "network", "path": "proc/1/ns/net"}]}),
     "linux.namespaces[0].path: 'proc/1/ns/net' must be an absolute path"),
    (config(linux={"uidMappings": [{"size": 1}]}),
     "linux.uidMappings: mappings need a new user namespace in linux.namespaces"),
    (config(linux={"namespaces": [{"type": "user", "path": "/proc/1/ns/user"}],
                   "gidMappings": [{"size": 1}]}),
     "linux.uidMappings: mappings need a new user namespace in linux.namespaces"),
    (config(linux={"namespaces": [{"type": "user"}], "uidMappings": [{"size": 1}]}),
     "linux.uidMappings: a new user namespace needs uidMappings and gidMappings"),
    (config(linux={"devices": [{"type": "c", "major": 1, "minor": 3}]}),
     "linux.devices[0].path: is required"),
    (config(linux={"devices": [{"path": "/dev/x", "type": "x", "major": 1, "minor": 3}]}),
     "linux.devices[0].type: must be one of c, b, u, p, not 'x'"),
    (config(linux={"devices": [{"path": "/dev/x", "type": "b", "major": 1}]}),
     "linux.devices[0]: major and minor are required for type 'b'"),
    (config(linux={"devices": [{"path": "/dev/x", "type": "c", "major": 1, "minor": 3,
                                "fileMode": 0o200000}]}),
     "linux.devices[0].fileMode: 65536 is out of range [0, 65535]"),
    (config(linux={"maskedPaths": ["/proc/kcore", "proc/keys"]}),
     "linux.maskedPaths[1]: 'proc/keys' must be an absolute path"),
    (config(linux={"readonlyPaths": [3]}),
     "linux.readonlyPaths[0]: must be a string, not an integer"),
    (config(linux={"rootfsPropagation": "recursive"}),
     "linux.rootfsPropagation: unknown propagation 'recursive'"),
    (config(linux={"sysctl": {"net.core.somaxconn": 256}}),
     "linux.sysctl.net.core.somaxconn: must be a string, not an integer"),
    (config(linux={"cgroupsPath": 5}), "linux.cgroupsPath: must be a string, not an integer"),
    (config(linux={"memoryPolicy": {"mode": "MPOL_BIND", "flags": "x"}}),
     "linux.memoryPolicy.flags: must be an array, not a string"),
    (config(linux=[]), "linux: must be an object, not an array"),
]  # fmt: skip


@pytest.mark.parametrize("raw, message", CASES, ids=[m.split(":")[0] for _, m in CASES])
def test_refusals_name_the_field(raw: dict, message: str) -> None:
    assert refusal(raw) == message


@pytest.mark.parametrize("raw", [[], "x", None, 3])
def test_the_document_must_be_an_object(raw) -> None:
    assert refusal(raw).startswith("(root): must be an object, not ")


def test_null_means_absent() -> None:
    spec = Spec(config(hostname=None, mounts=None, linux=None, annotations=None,
                       process__env=None, process__user=None), "/b")  # fmt: skip
    assert spec.hostname is None and spec.mounts == [] and spec.linux == {}
    assert spec.process.env == [] and spec.process.user.uid == 0


def test_process_and_mount_alone() -> None:
    """`exec --process FILE` builds a Process without a Spec; errors name its own path."""
    with pytest.raises(PyociError) as caught:
        Process({"args": ["sh"], "cwd": "x"}, "--process")
    assert caught.value.msg == "--process.cwd: 'x' must be an absolute path"
    assert Mount({"destination": "/d"}, "m").options == []


# --- any wrong type, anywhere ------------------------------------------------------------------
def _json_kind(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    return "an integer" if isinstance(value, int) else "a number"  # validate's words too


FIELDS = {  # dotted path in config() spelling → the JSON kind it must be
    "hostname": "a string",
    "domainname": "a string",
    "mounts": "an array",
    "annotations": "an object",
    "linux": "an object",
    "hooks": "an object",
    "root__readonly": "a boolean",
    "process__terminal": "a boolean",
    "process__noNewPrivileges": "a boolean",
    "process__user__uid": "an integer",
    "process__user__gid": "an integer",
    "process__oomScoreAdj": "an integer",
    "process__env": "an array",
    "process__args": "an array",
    "process__user": "an object",
    "process__cwd": "a string",
}
_JSON = st.recursive(
    st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                 max_size=3),
    max_leaves=6,
)  # fmt: skip


@SETTINGS
@given(field=st.sampled_from(sorted(FIELDS)), value=_JSON)
def test_a_value_of_the_wrong_kind_is_named_by_path_and_kind(field: str, value) -> None:
    kind = FIELDS[field]
    right = {
        "a string": isinstance(value, str),
        "a boolean": isinstance(value, bool),
        "an array": isinstance(value, list),
        "an object": isinstance(value, dict),
        "an integer": isinstance(value, int) and not isinstance(value, bool),
    }[kind]
    if right:
        return  # the right kind: other checks (range, content) may still apply
    path = field.replace("__", ".")
    assert refusal(config(**{field: value})) == f"{path}: must be {kind}, not {_json_kind(value)}"


def test_exec_process_file_parts_are_typed_as_configs_are() -> None:
    """`exec --process FILE` builds a Process alone: its raw-applied parts are typed there."""
    with pytest.raises(PyociError) as caught:
        Process({"args": ["true"], "cwd": "/", "scheduler": {"policy": {}}})
    assert caught.value.msg == "process.scheduler.policy: must be a string, not an object"


# --- load --------------------------------------------------------------------------------------
def bundle_with(tmp_path: Path, content: bytes | str | None, rootfs: bool = True) -> Path:
    if rootfs:
        (tmp_path / "rootfs").mkdir()
    if content is not None:
        data = content.encode() if isinstance(content, str) else content
        (tmp_path / "config.json").write_bytes(data)
    return tmp_path


def load_error(bundle: Path | str) -> str:
    with pytest.raises(PyociError) as caught:
        speclib.load(str(bundle))
    return caught.value.msg


def test_load_a_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle_with(tmp_path, json.dumps(BASE))
    monkeypatch.chdir(tmp_path.parent)
    spec = speclib.load(tmp_path.name)  # a relative bundle path is made absolute
    assert spec.bundle == str(tmp_path) and spec.root_path == str(tmp_path / "rootfs")


def test_load_without_config_json(tmp_path: Path) -> None:
    assert load_error(tmp_path) == f"config.json: no such file in bundle {tmp_path}"


def test_load_a_config_json_that_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "config.json").mkdir()
    assert load_error(tmp_path) == (f"config.json: {tmp_path}/config.json is not a regular file")


def test_relative_mount_destination_is_read_from_the_root(tmp_path: Path) -> None:
    raw = config(mounts=[{"destination": "tmp", "type": "tmpfs"}])
    assert Spec(raw, str(tmp_path)).mounts[0].destination == "/tmp"


def test_load_names_line_and_column_of_bad_json(tmp_path: Path) -> None:
    bundle_with(tmp_path, '{\n  "ociVersion": ,\n}')
    assert load_error(tmp_path) == "config.json: invalid JSON at line 2 column 17: Expecting value"


def test_load_names_where_an_integer_is_too_long(tmp_path: Path) -> None:
    """F9: int() refuses more than 4,300 digits; said as JSON's error, at that integer."""
    bundle_with(tmp_path, '{"ociVersion": "' + "1" * 5000 + '",\n "x": ' + "9" * 5000 + "}")
    assert load_error(tmp_path) == (
        "config.json: invalid JSON at line 2 column 7: an integer of 5000 digits (at most 4300)"
    )


def test_load_refuses_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    bundle_with(tmp_path, b'{"ociVersion": "\xff"}')
    assert load_error(tmp_path) == "config.json: not UTF-8 (invalid start byte)"


def test_load_needs_the_root_directory(tmp_path: Path) -> None:
    bundle_with(tmp_path, json.dumps(BASE), rootfs=False)
    assert load_error(tmp_path) == f"root.path: {tmp_path}/rootfs is not a directory"
    (tmp_path / "rootfs").write_text("")
    assert load_error(tmp_path) == f"root.path: {tmp_path}/rootfs is not a directory"


def test_load_checks_the_model(tmp_path: Path) -> None:
    bundle_with(tmp_path, json.dumps(config(process__cwd="rel")))
    assert load_error(tmp_path) == "process.cwd: 'rel' must be an absolute path"
