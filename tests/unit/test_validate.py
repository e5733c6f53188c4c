"""Unit tests for pyoci.validate: the schema layer, each semantic rule, and the reporting.

Each test builds a bundle in tmp_path from bundles/busybox/config.json (an empty rootfs dir is
enough: validation never looks inside it), changes one field, and asserts the exact problem.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pyoci.validate import SPECS_DIR, validate_bundle, validate_config

REPO = Path(__file__).resolve().parents[2]
BUSYBOX = REPO / "bundles" / "busybox"
BASE_CONFIG = json.loads((BUSYBOX / "config.json").read_text())

Bundle = Callable[..., list[str]]


@pytest.fixture
def config() -> dict:
    """A fresh copy of the busybox config, valid as is."""
    return copy.deepcopy(BASE_CONFIG)


@pytest.fixture
def check(tmp_path: Path) -> Bundle:
    """Write `config` as a bundle with an empty rootfs and return validate_bundle's answer."""

    def run(config: dict) -> list[str]:
        (tmp_path / "rootfs").mkdir(exist_ok=True)
        (tmp_path / "config.json").write_text(json.dumps(config))
        return validate_bundle(tmp_path)

    return run


def namespaces(config: dict) -> list[dict]:
    return config["linux"]["namespaces"]


def without_namespace(config: dict, ns_type: str) -> dict:
    config["linux"]["namespaces"] = [ns for ns in namespaces(config) if ns["type"] != ns_type]
    return config


# --- valid configs -----------------------------------------------------------------------------
def test_busybox_config_is_valid(check: Bundle, config: dict) -> None:
    assert check(config) == []


def test_minimal_config_is_valid(check: Bundle) -> None:
    assert check({"ociVersion": "1.2.0", "root": {"path": "rootfs"}}) == []


def test_repository_busybox_bundle_is_valid() -> None:
    if not (BUSYBOX / "rootfs").is_dir():
        pytest.skip("bundles/busybox/rootfs not built (make rootfs)")
    assert validate_bundle(BUSYBOX) == []


def test_accepts_a_path_like_and_a_string(tmp_path: Path, config: dict) -> None:
    (tmp_path / "rootfs").mkdir()
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert validate_bundle(str(tmp_path)) == validate_bundle(tmp_path) == []


def test_full_linux_config_is_valid(check: Bundle, config: dict) -> None:
    """Every optional Linux section filled with correct values passes both layers."""
    config["process"].update(
        consoleSize={"height": 25, "width": 80},
        oomScoreAdj=100,
        scheduler={"policy": "SCHED_FIFO", "priority": 1, "flags": ["SCHED_FLAG_RECLAIM"]},
        ioPriority={"class": "IOPRIO_CLASS_BE", "priority": 4},
        execCPUAffinity={"initial": "0", "final": "0-3,7"},
    )
    config["process"]["user"].update(umask=18, additionalGids=[5, 6])
    config["domainname"] = "example.test"
    config["hooks"] = {"createRuntime": [{"path": "/bin/true", "args": ["true"], "timeout": 5}]}
    config["mounts"].append(
        {
            "destination": "/data",
            "source": "/srv",
            "options": ["rbind", "idmap"],
            "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
            "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
        }
    )
    linux = config["linux"]
    linux["namespaces"] += [{"type": "user"}, {"type": "time"}, {"type": "cgroup"}]
    linux.update(
        uidMappings=[{"containerID": 0, "hostID": 100000, "size": 65536}],
        gidMappings=[{"containerID": 0, "hostID": 100000, "size": 65536}],
        timeOffsets={"monotonic": {"secs": 10, "nanosecs": 0}},
        devices=[
            {"type": "c", "path": "/dev/fuse", "major": 10, "minor": 229, "fileMode": 438},
            {"type": "p", "path": "/run/fifo"},
        ],
        sysctl={"net.ipv4.ip_forward": "1", "kernel.shmmax": "1024"},
        rootfsPropagation="rslave",
        cgroupsPath="/pyoci/test",
        resources={
            "devices": [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c"}],
            "memory": {"limit": -1, "swappiness": 60},
            "cpu": {"quota": 100000, "burst": 50000, "period": 100000, "cpus": "0-1"},
            "pids": {"limit": 32},
            "blockIO": {"weightDevice": [{"major": 8, "minor": 0, "weight": 500}]},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 2**64 - 1}],
            "rdma": {"mlx5_1": {"hcaHandles": 3}},
            "unified": {"memory.high": "max"},
        },
        seccomp={
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [
                {
                    "names": ["ptrace"],
                    "action": "SCMP_ACT_ERRNO",
                    "errnoRet": 1,
                    "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}],
                }
            ],
        },
        personality={"domain": "LINUX"},
        intelRdt={"closID": "guaranteed", "memBwSchema": "MB:0=20"},
    )
    assert check(config) == []


# --- reading the file --------------------------------------------------------------------------
def test_missing_config_json(tmp_path: Path) -> None:
    assert validate_bundle(tmp_path) == [f"config.json: no such file in bundle {tmp_path}"]


def test_missing_bundle_directory(tmp_path: Path) -> None:
    bundle = tmp_path / "nowhere"
    assert validate_bundle(bundle) == [f"config.json: no such file in bundle {bundle}"]


def test_malformed_json_reports_line_and_column(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{\n  "ociVersion": "1.2.0",\n  "root": ,\n}\n')
    assert validate_bundle(tmp_path) == [
        "config.json: invalid JSON at line 3 column 11: Expecting value"
    ]


@pytest.mark.parametrize(
    "encoded, reason",
    [
        (b"\xef\xbb\xbf{}", "invalid JSON at line 1 column 1: Unexpected UTF-8 BOM"),
        ("{}".encode("utf-16"), "invalid JSON: not UTF-8 text"),
    ],
    ids=["bom", "utf-16"],
)
def test_what_create_cannot_read_is_an_error(tmp_path: Path, encoded: bytes, reason: str) -> None:
    """create reads UTF-8 JSON without a BOM, as runc's Go decoder does (RFC 8259 allows a
    parser to refuse a BOM); validate reads it with the same parser, not json.loads, which
    would guess the encoding and accept both."""
    (tmp_path / "config.json").write_bytes(encoded)
    (problem,) = validate_bundle(tmp_path)
    assert problem.startswith(f"config.json: {reason}"), problem


def test_an_integer_too_long_for_python_is_an_error_at_its_position(tmp_path: Path) -> None:
    """F9: it used to be `internal error: ValueError: Exceeds the limit (4300 digits)...`."""
    (tmp_path / "config.json").write_text('{\n  "ociVersion": ' + "9" * 5000 + "\n}\n")
    assert validate_bundle(tmp_path) == [
        "config.json: invalid JSON at line 2 column 17: an integer of 5000 digits (at most 4300)"
    ]


def test_malformed_json_stops_the_check(tmp_path: Path) -> None:
    """Nothing else is reported (no schema noise about a document that could not be read)."""
    (tmp_path / "config.json").write_text('{"ociVersion": 1,,}')
    problems = validate_bundle(tmp_path)
    assert problems == [
        "config.json: invalid JSON at line 1 column 18: Expecting property name "
        "enclosed in double quotes"
    ]


def test_unreadable_config_json(tmp_path: Path) -> None:
    (tmp_path / "config.json").mkdir()
    assert validate_bundle(tmp_path) == [
        f"config.json: {tmp_path / 'config.json'} is not a regular file"  # as `create` says
    ]


# --- schema layer ------------------------------------------------------------------------------
def test_schemas_are_valid_json_schemas() -> None:
    import jsonschema

    for name in ("config-schema.json", "state-schema.json"):
        schema = json.loads((SPECS_DIR / name).read_text())
        jsonschema.validators.validator_for(schema).check_schema(schema)


def test_document_must_be_an_object(check: Bundle) -> None:
    assert check([]) == ["(root): must be an object, not an array"]


def test_oci_version_is_required(check: Bundle, config: dict) -> None:
    del config["ociVersion"]
    assert check(config) == ["ociVersion: is required"]


def test_oci_version_must_be_semver(check: Bundle, config: dict) -> None:
    config["ociVersion"] = "1.2"
    assert check(config) == ["ociVersion: must be a SemVer 2.0.0 version, not `1.2`"]


def test_root_is_required(check: Bundle, config: dict) -> None:
    del config["root"]
    assert check(config) == ["root: is required"]


def test_every_missing_required_property_is_named(check: Bundle, config: dict) -> None:
    config["process"]["user"] = {}
    assert check(config) == ["process.user.uid: is required", "process.user.gid: is required"]


def test_wrong_type(check: Bundle, config: dict) -> None:
    config["process"]["terminal"] = "yes"
    assert check(config) == ["process.terminal: must be a boolean, not a string"]


def test_boolean_is_not_an_integer(check: Bundle, config: dict) -> None:
    config["process"]["user"]["uid"] = True
    assert check(config) == ["process.user.uid: must be an integer, not a boolean"]


def test_a_float_is_not_an_integer_even_when_whole(check: Bundle, config: dict) -> None:
    """JSON Schema takes 1.0 for an integer; create (and runc's Go decoder) refuse it, so
    validate does too."""
    config["process"]["user"]["uid"] = 0.0
    config["linux"]["resources"] = {"pids": {"limit": 64.0}}
    assert check(config) == [
        "linux.resources.pids.limit: must be an integer, not a number",
        "process.user.uid: must be an integer, not a number",
    ]


@pytest.mark.parametrize(
    "path, value, problem",
    [
        ("process.user.umask", 4096, "must be <= 4095, not 4096"),
        ("process.consoleSize", {"height": 65536, "width": 1}, None),
        ("linux.devices", [{"path": "/dev/x", "type": "c", "major": -1, "minor": 1}], None),
        ("hooks", {"prestart": [{"path": "/bin/true", "timeout": 2**31}]}, None),
    ],
    ids=["umask", "console-size", "device-major", "hook-timeout"],
)
def test_ranges_are_create_s(
    check: Bundle, config: dict, tmp_path: Path, path: str, value: object, problem: str | None
) -> None:
    """Where the kernel's range is narrower than the spec's type (umask(2) has 12 bits, struct
    winsize 16, mknod's major 32, MAX_ERRNO is 4095), create refuses the rest, and validate
    says so too: each of these is one problem for validate and an error for create."""
    from pyoci import spec as speclib
    from pyoci.errors import PyociError

    *parents, last = path.split(".")
    node = config
    for key in parents:
        node = node[key]
    node[last] = value
    problems = check(config)
    assert len(problems) == 1, problems
    if problem:
        assert problems[0] == f"{path}: {problem}"
    config["root"]["path"] = str(tmp_path / "rootfs")
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(PyociError):
        speclib.load(str(tmp_path))


def test_an_errno_over_max_errno_is_refused_by_both(check: Bundle, config: dict) -> None:
    from pyoci.errors import PyociError
    from pyoci.linux.seccomp import SeccompPlan

    seccomp = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 4096}
    config["linux"]["seccomp"] = seccomp
    assert check(config) == ["linux.seccomp.defaultErrnoRet: must be <= 4095, not 4096"]
    with pytest.raises(PyociError, match="errnoRet must be an integer in"):
        SeccompPlan(seccomp)


def test_uint32_range(check: Bundle, config: dict) -> None:
    config["process"]["user"]["uid"] = 2**32
    assert check(config) == ["process.user.uid: must be <= 4294967295, not 4294967296"]


def test_int64_range(check: Bundle, config: dict) -> None:
    config["linux"]["resources"] = {"memory": {"limit": 2**63}}
    assert check(config) == [f"linux.resources.memory.limit: must be <= {2**63 - 1}, not {2**63}"]


def test_uint64_accepts_rlim_infinity(check: Bundle, config: dict) -> None:
    config["process"]["rlimits"] = [{"type": "RLIMIT_CORE", "soft": 2**64 - 1, "hard": 2**64 - 1}]
    assert check(config) == []


def test_hook_timeout_must_be_positive(check: Bundle, config: dict) -> None:
    config["hooks"] = {"poststop": [{"path": "/bin/true", "timeout": 0}]}
    assert check(config) == ["hooks.poststop[0].timeout: must be >= 1, not 0"]


def test_hook_path_is_required(check: Bundle, config: dict) -> None:
    config["hooks"] = {"poststart": [{"args": ["x"]}]}
    assert check(config) == ["hooks.poststart[0].path: is required"]


def test_mount_destination_is_required(check: Bundle, config: dict) -> None:
    del config["mounts"][3]["destination"]
    assert check(config) == ["mounts[3].destination: is required"]


def test_namespace_type_enum(check: Bundle, config: dict) -> None:
    namespaces(config)[1]["type"] = "net"
    assert check(config) == [
        "linux.namespaces[1].type: must be one of pid, network, mount, ipc, uts, user, cgroup, "
        "time, not `net`"
    ]


def test_device_type_enum(check: Bundle, config: dict) -> None:
    config["linux"]["devices"] = [{"type": "x", "path": "/dev/x"}]
    assert check(config) == ["linux.devices[0].type: must be one of c, b, u, p, not `x`"]


def test_capability_pattern(check: Bundle, config: dict) -> None:
    """A name of the wrong form is reported once, by the schema, not again as unknown."""
    config["process"]["capabilities"]["effective"][0] = "cap_kill"
    assert check(config) == [
        "process.capabilities.effective[0]: must match `^CAP_[A-Z_]+$`, not `cap_kill`"
    ]


def test_annotation_values_must_be_strings(check: Bundle, config: dict) -> None:
    config["annotations"]["com.example.n"] = 2
    # as create names it (one formatter: pyoci.rules.dotted); a key that would not read back
    # is quoted (test_rules.py)
    assert check(config) == ["annotations.com.example.n: must be a string, not an integer"]


def test_annotation_keys_must_not_be_empty(check: Bundle, config: dict) -> None:
    config["annotations"][""] = "x"
    assert check(config) == ['annotations[""]: invalid key: must not be empty']


def test_time_offsets_clock_names(check: Bundle, config: dict) -> None:
    namespaces(config).append({"type": "time"})
    config["linux"]["timeOffsets"] = {"realtime": {"secs": 1}}
    assert check(config) == [
        "linux.timeOffsets.realtime: invalid key: must be one of monotonic, boottime, not "
        "`realtime`"
    ]


def test_seccomp_syscall_names_must_not_be_empty(check: Bundle, config: dict) -> None:
    config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": [], "action": "SCMP_ACT_KILL"}],
    }
    assert check(config) == ["linux.seccomp.syscalls[0].names: must not be empty"]


def test_io_priority_range(check: Bundle, config: dict) -> None:
    config["process"]["ioPriority"] = {"class": "IOPRIO_CLASS_BE", "priority": 8}
    assert check(config) == ["process.ioPriority.priority: must be <= 7, not 8"]


def test_unknown_properties_are_allowed(check: Bundle, config: dict) -> None:
    """config.md: runtimes MUST ignore unknown properties, so the schema stays open."""
    config["org.example.extension"] = {"anything": [1, 2]}
    config["linux"]["netDevices"] = {"eth0": {}}
    assert check(config) == []


# --- rules: root and process -------------------------------------------------------------------
def test_root_path_must_exist(tmp_path: Path, config: dict) -> None:
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert validate_bundle(tmp_path) == [
        f"root.path: directory `{tmp_path / 'rootfs'}` does not exist"
    ]


def test_root_path_must_be_a_directory(tmp_path: Path, config: dict) -> None:
    (tmp_path / "rootfs").write_text("")
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert validate_bundle(tmp_path) == [f"root.path: `{tmp_path / 'rootfs'}` is not a directory"]


def test_root_path_may_be_absolute(check: Bundle, config: dict, tmp_path: Path) -> None:
    config["root"]["path"] = str(tmp_path / "rootfs")
    assert check(config) == []


def test_process_args_must_not_be_empty(check: Bundle, config: dict) -> None:
    config["process"]["args"] = []
    assert check(config) == ["process.args: must not be empty"]


def test_process_args_is_required(check: Bundle, config: dict) -> None:
    del config["process"]["args"]
    assert check(config) == ["process.args: is required"]


def test_process_cwd_must_be_absolute(check: Bundle, config: dict) -> None:
    config["process"]["cwd"] = "root"
    assert check(config) == ["process.cwd: must be an absolute path"]


def test_unknown_capability(check: Bundle, config: dict) -> None:
    config["process"]["capabilities"]["bounding"].append("CAP_SYS_MAGIC")
    assert check(config) == ["process.capabilities.bounding[3]: unknown capability `CAP_SYS_MAGIC`"]


def test_every_capability_up_to_checkpoint_restore_is_known(check: Bundle, config: dict) -> None:
    from pyoci.validate import CAPABILITIES

    assert len(CAPABILITIES) == 41
    config["process"]["capabilities"]["permitted"] = sorted(CAPABILITIES)
    assert check(config) == []


def test_unknown_rlimit(check: Bundle, config: dict) -> None:
    config["process"]["rlimits"][0]["type"] = "RLIMIT_FILES"
    assert check(config) == ["process.rlimits[0].type: unknown rlimit `RLIMIT_FILES`"]


def test_rlimit_soft_must_not_exceed_hard(check: Bundle, config: dict) -> None:
    config["process"]["rlimits"][0].update(soft=4096, hard=1024)
    assert check(config) == ["process.rlimits[0].soft: must be <= hard, not 4096 > 1024"]


def test_duplicated_rlimit(check: Bundle, config: dict) -> None:
    config["process"]["rlimits"].append({"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1})
    assert check(config) == ["process.rlimits[1].type: duplicated (also at process.rlimits[0])"]


# --- rules: mounts, hooks, hostname ------------------------------------------------------------
def test_relative_mount_destination_is_valid(check: Bundle, config: dict) -> None:
    """config.md (1.2+): a relative destination "MUST be interpreted as relative to "/""."""
    config["mounts"][3]["destination"] = "dev/shm"
    assert check(config) == []


@pytest.mark.parametrize(
    ("given", "missing"), [("uidMappings", "gidMappings"), ("gidMappings", "uidMappings")]
)
def test_mount_mappings_come_in_pairs(
    check: Bundle, config: dict, given: str, missing: str
) -> None:
    config["mounts"][0][given] = [{"containerID": 0, "hostID": 1000, "size": 1}]
    assert check(config) == [f"mounts[0].{missing}: is required when {given} is set"]


@pytest.mark.parametrize("option", ["idmap", "ridmap"])
def test_idmap_mount_needs_mappings_or_user_namespace(
    check: Bundle, config: dict, option: str
) -> None:
    config["mounts"].append({"destination": "/data", "source": "/srv", "options": ["bind", option]})
    assert check(config) == [
        f"mounts[7].options: `{option}` needs uidMappings and gidMappings or a user namespace"
    ]
    namespaces(config).append({"type": "user"})
    mapping = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    config["linux"]["uidMappings"] = config["linux"]["gidMappings"] = mapping
    assert check(config) == []


def test_a_new_user_namespace_needs_both_mappings(check: Bundle, config: dict) -> None:
    """As create (and runc: "User namespaces enabled, but no uid mappings found")."""
    namespaces(config).append({"type": "user"})
    config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 1}]
    assert check(config) == [
        "linux.uidMappings: is required for a new user namespace (linux.namespaces[5])"
    ]
    namespaces(config)[5]["path"] = "/proc/self/ns/user"  # joined: its mappings are set already
    del config["linux"]["gidMappings"]
    assert check(config) == []


@pytest.mark.parametrize(
    "hook",
    ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
)
def test_hook_path_must_be_absolute(check: Bundle, config: dict, hook: str) -> None:
    config["hooks"] = {hook: [{"path": "/bin/true"}, {"path": "bin/true"}]}
    assert check(config) == [f"hooks.{hook}[1].path: must be an absolute path"]


@pytest.mark.parametrize("field", ["hostname", "domainname"])
def test_hostname_requires_uts_namespace(check: Bundle, config: dict, field: str) -> None:
    config.pop("hostname")
    config[field] = "box"
    without_namespace(config, "uts")
    assert check(config) == [f"{field}: requires a uts namespace in linux.namespaces"]


# --- rules: namespaces and mappings ------------------------------------------------------------
def test_duplicated_namespace(check: Bundle, config: dict) -> None:
    namespaces(config).append({"type": "network", "path": "/proc/self/ns/net"})
    assert check(config) == ["linux.namespaces[5].type: duplicated (also at linux.namespaces[1])"]


def test_namespace_path_must_exist(check: Bundle, config: dict, tmp_path: Path) -> None:
    missing = tmp_path / "netns"
    namespaces(config)[1]["path"] = str(missing)
    assert check(config) == [f"linux.namespaces[1].path: `{missing}` does not exist"]


def test_namespace_path_must_be_absolute(check: Bundle, config: dict) -> None:
    namespaces(config)[1]["path"] = "proc/self/ns/net"
    assert check(config) == ["linux.namespaces[1].path: must be an absolute path"]


def test_namespace_path_may_join_an_existing_namespace(check: Bundle, config: dict) -> None:
    namespaces(config)[1]["path"] = "/proc/self/ns/net"
    assert check(config) == []


def test_namespace_path_must_be_of_its_type(check: Bundle, config: dict) -> None:
    namespaces(config)[2]["path"] = "/proc/self/ns/net"
    assert check(config) == [
        "linux.namespaces[2].path: `/proc/self/ns/net` is a network namespace, not ipc"
    ]


def test_namespace_path_must_be_a_namespace(check: Bundle, config: dict, tmp_path: Path) -> None:
    namespaces(config)[1]["path"] = str(tmp_path / "rootfs")
    assert check(config) == [
        f"linux.namespaces[1].path: `{tmp_path / 'rootfs'}` is not a namespace file"
    ]


@pytest.mark.parametrize("key", ["uidMappings", "gidMappings"])
def test_mappings_require_user_namespace(check: Bundle, config: dict, key: str) -> None:
    config["linux"][key] = [{"containerID": 0, "hostID": 1000, "size": 1}]
    assert check(config) == [f"linux.{key}: requires a user namespace in linux.namespaces"]


def test_mappings_with_a_joined_user_namespace(check: Bundle, config: dict) -> None:
    namespaces(config).append({"type": "user", "path": "/proc/self/ns/user"})
    config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1}]
    assert check(config) == [
        "linux.uidMappings: must not be set when joining a user namespace "
        "(linux.namespaces[5].path)"
    ]


def test_time_offsets_require_time_namespace(check: Bundle, config: dict) -> None:
    config["linux"]["timeOffsets"] = {"boottime": {"secs": 60}}
    assert check(config) == ["linux.timeOffsets: requires a time namespace in linux.namespaces"]


def test_time_offsets_with_a_joined_time_namespace(check: Bundle, config: dict) -> None:
    if not os.path.exists("/proc/self/ns/time"):
        pytest.skip("kernel without time namespaces")
    namespaces(config).append({"type": "time", "path": "/proc/self/ns/time"})
    config["linux"]["timeOffsets"] = {"boottime": {"secs": 60}}
    assert check(config) == [
        "linux.timeOffsets: must not be set when joining a time namespace "
        "(linux.namespaces[5].path)"
    ]


# --- rules: devices, sysctl, paths, propagation ------------------------------------------------
def test_device_path_must_be_absolute(check: Bundle, config: dict) -> None:
    config["linux"]["devices"] = [{"type": "c", "path": "dev/fuse", "major": 10, "minor": 229}]
    assert check(config) == ["linux.devices[0].path: must be an absolute path"]


def test_device_path_may_be_outside_dev(check: Bundle, config: dict) -> None:
    """config-linux.md: the path "MAY be anywhere in the container filesystem"."""
    config["linux"]["devices"] = [{"type": "c", "path": "/mnt/fuse", "major": 10, "minor": 229}]
    assert check(config) == []


@pytest.mark.parametrize("dev_type", ["c", "b", "u"])
def test_device_numbers_are_required(check: Bundle, config: dict, dev_type: str) -> None:
    config["linux"]["devices"] = [{"type": dev_type, "path": "/dev/x", "minor": 1}]
    assert check(config) == [f"linux.devices[0].major: is required for type `{dev_type}`"]


def test_fifo_device_needs_no_numbers(check: Bundle, config: dict) -> None:
    config["linux"]["devices"] = [{"type": "p", "path": "/dev/fifo"}]
    assert check(config) == []


@pytest.mark.parametrize(
    ("key", "ns_type"),
    [
        ("net.ipv4.ip_forward", "network"),
        ("kernel.shmmax", "ipc"),
        ("fs.mqueue.queues_max", "ipc"),
        ("kernel.hostname", "uts"),
    ],
)
def test_namespaced_sysctl_requires_its_namespace(
    check: Bundle, config: dict, key: str, ns_type: str
) -> None:
    config["linux"]["sysctl"] = {key: "1"}
    config.pop("hostname")
    without_namespace(config, ns_type)
    assert check(config) == [
        f"linux.sysctl.{key}: requires a {ns_type} namespace in linux.namespaces"
    ]


def test_net_sysctl_with_a_joined_network_namespace(check: Bundle, config: dict) -> None:
    namespaces(config)[1]["path"] = "/proc/self/ns/net"
    config["linux"]["sysctl"] = {"net.core.somaxconn": "256"}
    assert check(config) == []


@pytest.mark.parametrize("field", ["maskedPaths", "readonlyPaths"])
def test_masked_and_readonly_paths_must_be_absolute(
    check: Bundle, config: dict, field: str
) -> None:
    config["linux"][field] = ["/proc/kcore", "proc/keys"]
    assert check(config) == [f"linux.{field}[1]: must be an absolute path"]


def test_rootfs_propagation_values(check: Bundle, config: dict) -> None:
    config["linux"]["rootfsPropagation"] = "rprivat"
    expected = (
        "linux.rootfsPropagation: must be one of private, shared, slave, unbindable, rprivate, "
        "rshared, rslave, runbindable, not `rprivat`"
    )
    assert check(config) == [expected]
    assert validate_config(config, BUSYBOX) == [expected]


# --- rules: seccomp and resources --------------------------------------------------------------
def test_seccomp_errno_needs_an_errno_action(check: Bundle, config: dict) -> None:
    config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "defaultErrnoRet": 1,
        "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_KILL", "errnoRet": 1}],
    }
    assert check(config) == [
        "linux.seccomp.defaultErrnoRet: only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, "
        "not `SCMP_ACT_ALLOW`",
        "linux.seccomp.syscalls[0].errnoRet: only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, "
        "not `SCMP_ACT_KILL`",
    ]


def test_seccomp_listener_metadata_needs_listener_path(check: Bundle, config: dict) -> None:
    config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "x"}
    assert check(config) == ["linux.seccomp.listenerMetadata: requires linux.seccomp.listenerPath"]


def test_cpu_burst_must_not_exceed_quota(check: Bundle, config: dict) -> None:
    config["linux"]["resources"] = {"cpu": {"quota": 50000, "burst": 60000}}
    assert check(config) == ["linux.resources.cpu.burst: must be <= quota, not 60000 > 50000"]


def test_block_io_weight_device_needs_a_weight(check: Bundle, config: dict) -> None:
    config["linux"]["resources"] = {"blockIO": {"weightDevice": [{"major": 8, "minor": 0}]}}
    assert check(config) == ["linux.resources.blockIO.weightDevice[0]: needs weight or leafWeight"]


def test_rdma_entry_needs_a_limit(check: Bundle, config: dict) -> None:
    config["linux"]["resources"] = {"rdma": {"mlx5_1": {}}}
    assert check(config) == ["linux.resources.rdma.mlx5_1: needs hcaHandles or hcaObjects"]


# --- reporting ---------------------------------------------------------------------------------
def test_every_problem_is_reported(tmp_path: Path, config: dict) -> None:
    config["ociVersion"] = 1
    config["process"]["args"] = []
    config["process"]["cwd"] = "tmp"
    namespaces(config).append({"type": "pid"})
    config["linux"]["maskedPaths"][0] = "proc/acpi"
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert validate_bundle(tmp_path) == [
        "ociVersion: must be a string, not an integer",
        f"root.path: directory `{tmp_path / 'rootfs'}` does not exist",
        "process.args: must not be empty",
        "process.cwd: must be an absolute path",
        "linux.namespaces[5].type: duplicated (also at linux.namespaces[0])",
        "linux.maskedPaths[0]: must be an absolute path",
    ]


def test_rules_survive_a_config_of_wrong_shapes(check: Bundle) -> None:
    """Rules skip what the schema reports, so a badly shaped config never crashes them."""
    config = {
        "ociVersion": "1.2.0",
        "root": {"path": 3},
        "process": {"cwd": 1, "args": "sh", "rlimits": [1, {"type": 2}], "capabilities": []},
        "mounts": {"destination": "x"},
        "hooks": {"prestart": "x"},
        "linux": {"namespaces": [None, {"type": 1}], "sysctl": [], "devices": [[]], "seccomp": 1},
    }
    assert check(config) == [
        "hooks.prestart: must be an array, not a string",
        "linux.devices[0]: must be an object, not an array",
        "linux.namespaces[0]: must be an object, not null",
        "linux.namespaces[1].type: must be one of pid, network, mount, ipc, uts, user, cgroup, "
        "time, not an integer",
        "linux.seccomp: must be an object, not an integer",
        "linux.sysctl: must be an object, not an array",
        "mounts: must be an array, not an object",
        "process.args: must be an array, not a string",
        "process.capabilities: must be an object, not an array",
        "process.cwd: must be a string, not an integer",
        "process.rlimits[0]: must be an object, not an integer",
        "process.rlimits[1].soft: is required",
        "process.rlimits[1].hard: is required",
        "process.rlimits[1].type: must be a string, not an integer",
        "root.path: must be a string, not an integer",
    ]


def test_validate_config_alone_needs_no_schema(config: dict, tmp_path: Path) -> None:
    (tmp_path / "rootfs").mkdir()
    config["process"]["cwd"] = "tmp"
    assert validate_config(config, tmp_path) == ["process.cwd: must be an absolute path"]


def test_importing_validate_does_not_import_jsonschema() -> None:
    """The runtime may import pyoci.validate (validate_config); jsonschema costs ~120 ms."""
    code = "import sys, pyoci.validate; sys.exit('jsonschema' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0


# --- state schema ------------------------------------------------------------------------------
def _state_errors(state: dict) -> list[str]:
    import jsonschema

    schema = json.loads((SPECS_DIR / "state-schema.json").read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    return sorted(error.message for error in validator.iter_errors(state))


RUNC_STATE = {
    "ociVersion": "1.2.0",
    "id": "box",
    "pid": 4422,
    "status": "running",
    "bundle": "/containers/box",
    "rootfs": "/containers/box/rootfs",
    "created": "2024-05-01T10:11:12.123456789Z",
    "owner": "",
    "annotations": {"org.example": "x"},
}


@pytest.mark.parametrize("status", ["creating", "created", "running", "paused", "stopped"])
def test_state_schema_accepts_runc_states(status: str) -> None:
    assert _state_errors({**RUNC_STATE, "status": status}) == []


def test_state_schema_accepts_a_stopped_container_without_pid() -> None:
    state = {k: v for k, v in RUNC_STATE.items() if k != "pid"}
    assert _state_errors({**state, "status": "stopped"}) == []


def test_state_schema_rejects_bad_states() -> None:
    assert _state_errors({**RUNC_STATE, "status": "exited"}) != []
    assert _state_errors({**RUNC_STATE, "bundle": "containers/box"}) != []
    assert _state_errors({**RUNC_STATE, "created": "yesterday"}) != []
    assert _state_errors({**RUNC_STATE, "pid": 0}) == ["0 is less than the minimum of 1"]
