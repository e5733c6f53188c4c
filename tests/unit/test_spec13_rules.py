"""runtime-spec 1.3.0: the one version constant, the schema's new fields, linux.memoryPolicy and
process.execCPUAffinity (rules, plans, and the syscalls applied in forked children, checked
against the kernel), and security labels this host cannot apply."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pyoci import OCI_VERSION, rules
from pyoci.errors import PyociError
from pyoci.linux import affinity, mempolicy
from pyoci.spec import Process, Spec
from pyoci.validate import validate_bundle, validate_config

REPO = Path(__file__).resolve().parents[2]
BUSYBOX = json.loads((REPO / "bundles" / "busybox" / "config.json").read_text())


def _config(**linux) -> dict:
    config = copy.deepcopy(BUSYBOX)
    config["linux"].update(linux)
    return config


def _create_error(config: dict, tmp_path: Path) -> str | None:
    """What `create` (spec.Spec) says of the config; None when it accepts it."""
    try:
        Spec(copy.deepcopy(config), str(tmp_path))
    except PyociError as err:
        return err.msg
    return None


def _validate(config: dict, tmp_path: Path) -> list[str]:
    """What `pyoci validate` (schema + rules) says."""
    (tmp_path / "rootfs").mkdir(exist_ok=True)
    config = copy.deepcopy(config)
    config["root"]["path"] = "rootfs"
    (tmp_path / "config.json").write_text(json.dumps(config))
    return validate_bundle(tmp_path)


def _rules_of_validate(config: dict, tmp_path: Path) -> list[str]:
    """validate_config (the rules, no schema) of the config, its rootfs made in tmp_path."""
    (tmp_path / "rootfs").mkdir(exist_ok=True)
    config = copy.deepcopy(config)
    config["root"]["path"] = "rootfs"
    return validate_config(config, tmp_path)


def _in_child(body) -> tuple[int, str]:
    """Run body() in a forked child; (its exit code, what it wrote to the pipe)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(read_end)
            out = body()
            os.write(write_end, str(out if out is not None else "").encode())
        except BaseException as err:  # noqa: BLE001
            os.write(write_end, f"{type(err).__name__}: {err}".encode())
            code = 1
        os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        text = f.read().decode()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), text


# --- the version -------------------------------------------------------------------------------
def test_one_version_constant_is_reported_everywhere() -> None:
    from pyoci.defaults import default_spec
    from pyoci.features import features

    assert OCI_VERSION == "1.3.0"
    assert default_spec()["ociVersion"] == default_spec(rootless=True)["ociVersion"] == "1.3.0"
    assert features()["ociVersionMax"] == "1.3.0"


def test_no_other_spec_version_literal_in_the_runtime() -> None:
    """`grep -rn 1.2.0 pyoci` finds nothing: OCI_VERSION is the one source."""
    found = subprocess.run(
        ["grep", "-rnE", "--include=*.py", r"[\"']1\.[0-9]+\.[0-9]+", str(REPO / "pyoci")],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.splitlines()
    allowed = ('OCI_VERSION = "1.3.0"', '"ociVersionMin": "1.0.0"')
    assert [line for line in found if not any(a in line for a in allowed)] == []


def test_state_reports_the_runtime_version_not_the_bundles() -> None:
    """runtime.md: the state's ociVersion is the spec version the *state* complies with (runc
    prints its own, whatever the bundle's config said)."""
    from pyoci.state import ContainerState

    data = {"id": "x", "pid": 0, "ociVersion": "1.0.0", "bundle": "/b", "rootfs": "/r"}
    data["created"] = "2025-01-01T00:00:00Z"
    assert ContainerState("/nonexistent", data).oci_state()["ociVersion"] == "1.3.0"


# --- features ----------------------------------------------------------------------------------
def test_features_lists_what_1_3_0_added() -> None:
    from pyoci.features import features

    linux = features()["linux"]
    assert linux["memoryPolicy"] == {
        "modes": [
            "MPOL_DEFAULT",
            "MPOL_BIND",
            "MPOL_INTERLEAVE",
            "MPOL_WEIGHTED_INTERLEAVE",
            "MPOL_PREFERRED",
            "MPOL_PREFERRED_MANY",
            "MPOL_LOCAL",
        ],
        "flags": ["MPOL_F_NUMA_BALANCING", "MPOL_F_RELATIVE_NODES", "MPOL_F_STATIC_NODES"],
    }
    assert linux["intelRdt"] == {"enabled": False, "schemata": False, "monitoring": False}
    assert linux["netDevices"] == {"enabled": True}
    assert linux["apparmor"] == {"enabled": False} and linux["selinux"] == {"enabled": False}


# --- the schema --------------------------------------------------------------------------------
def test_schema_accepts_the_1_3_0_linux_fields(tmp_path: Path) -> None:
    config = _config(
        memoryPolicy={"mode": "MPOL_INTERLEAVE", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]},
        netDevices={"eth0": {"name": "ctr0"}, "ens4": {}},
        intelRdt={"closID": "c", "schemata": ["L3:0=ff", "MB:0=20"], "enableMonitoring": True},
    )
    config["process"]["execCPUAffinity"] = {"initial": "0", "final": "0-3,7"}
    assert _validate(config, tmp_path) == []


@pytest.mark.parametrize(
    "policy, problem",
    [
        ({"nodes": "0"}, "linux.memoryPolicy.mode: is required"),
        (
            {"mode": "INTERLEAVE", "nodes": "0"},
            "linux.memoryPolicy.mode: must be one of MPOL_DEFAULT, MPOL_BIND, MPOL_INTERLEAVE, "
            "MPOL_WEIGHTED_INTERLEAVE, MPOL_PREFERRED, MPOL_PREFERRED_MANY, MPOL_LOCAL, "
            "not `INTERLEAVE`",
        ),
        (
            {"mode": "MPOL_BIND", "nodes": "zero"},
            "linux.memoryPolicy.nodes: must be a list of ids such as 0-3,7, not `zero`",
        ),
        (
            {"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_RELATIVE_NODES", "badflag"]},
            "linux.memoryPolicy.flags[1]: must be one of MPOL_F_NUMA_BALANCING, "
            "MPOL_F_RELATIVE_NODES, MPOL_F_STATIC_NODES, not `badflag`",
        ),
    ],
)
def test_schema_reports_memory_policy_shapes_once(policy, problem, tmp_path: Path) -> None:
    """The schema reports the shape; the rule saying the same of the same path stays quiet."""
    assert _validate(_config(memoryPolicy=policy), tmp_path) == [problem]


def test_schema_checks_net_devices_and_cpu_lists(tmp_path: Path) -> None:
    config = _config(netDevices={"eth0": {"name": 5}}, intelRdt={"schemata": "L3:0=ff"})
    config["process"]["execCPUAffinity"] = {"final": "0-"}
    assert _validate(config, tmp_path) == [
        "linux.intelRdt.schemata: must be an array, not a string",
        "linux.netDevices.eth0.name: must be a string, not an integer",
        "process.execCPUAffinity.final: must be a list of ids such as 0-3,7, not `0-`",
    ]


# --- id lists ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, expected",
    [
        ("", []),
        ("  ", []),
        ("0", [0]),
        ("0-3,7", [0, 1, 2, 3, 7]),
        ("7,0-1, 1", [0, 1, 7]),
        ("2-2", [2]),
        ("0-", "`0-` is not a list of nodes such as 0-3,7 (`0-`)"),
        ("0,,1", "`0,,1` is not a list of nodes such as 0-3,7 (``)"),
        ("-1", "`-1` is not a list of nodes such as 0-3,7 (`-1`)"),
        ("a", "`a` is not a list of nodes such as 0-3,7 (`a`)"),
        ("3-1", "`3-1`: the range 3-1 runs backwards"),
        ("0-9876543210", "`0-9876543210`: node 9876543210 is over the highest possible, 32767"),
    ],
)
def test_parse_id_list(text: str, expected) -> None:
    assert rules.parse_id_list(text, "node", rules.MAX_NODE) == expected


# --- linux.memoryPolicy: the rules, create and validate ----------------------------------------
MEMORY_POLICY_CASES = [
    # (policy, the one problem, or None when valid)
    ({"mode": "MPOL_BIND", "nodes": "0"}, None),
    ({"mode": "MPOL_DEFAULT"}, None),  # nodes absent reads as "" (runc accepts it too)
    ({"mode": "MPOL_DEFAULT", "nodes": ""}, None),
    ({"mode": "MPOL_LOCAL", "nodes": ""}, None),
    ({"mode": "MPOL_PREFERRED", "nodes": ""}, None),  # empty: local allocation
    ({"mode": "MPOL_PREFERRED", "nodes": "0", "flags": ["MPOL_F_RELATIVE_NODES"]}, None),
    ({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_NUMA_BALANCING"]}, None),
    ({"mode": "MPOL_DEFAULT", "flags": ["MPOL_F_STATIC_NODES"]}, None),  # the kernel ignores it
    ({}, "linux.memoryPolicy.mode: is required"),
    ({"mode": "MPOL_DEFAULT", "nodes": "0-7"}, "linux.memoryPolicy.nodes: MPOL_DEFAULT takes no "
     "nodes, not `0-7`"),
    ({"mode": "MPOL_LOCAL", "nodes": "0"}, "linux.memoryPolicy.nodes: MPOL_LOCAL takes no nodes, "
     "not `0`"),
    ({"mode": "MPOL_BIND"}, "linux.memoryPolicy.nodes: MPOL_BIND needs at least one node"),
    ({"mode": "MPOL_WEIGHTED_INTERLEAVE", "nodes": " "},
     "linux.memoryPolicy.nodes: MPOL_WEIGHTED_INTERLEAVE needs at least one node"),
    ({"mode": "MPOL_BIND", "nodes": "0-9876543210"}, "linux.memoryPolicy.nodes: `0-9876543210`: "
     "node 9876543210 is over the highest possible, 32767"),
    ({"mode": "MPOL_BIND", "nodes": "5-2"},
     "linux.memoryPolicy.nodes: `5-2`: the range 5-2 runs backwards"),
    ({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"]},
     "linux.memoryPolicy.flags: MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other"),
    ({"mode": "MPOL_PREFERRED", "nodes": "", "flags": ["MPOL_F_STATIC_NODES"]},
     "linux.memoryPolicy.flags: MPOL_F_STATIC_NODES needs nodes (it says how to read them)"),
    ({"mode": "MPOL_LOCAL", "flags": ["MPOL_F_RELATIVE_NODES"]},
     "linux.memoryPolicy.flags: MPOL_F_RELATIVE_NODES needs nodes (it says how to read them)"),
    ({"mode": "MPOL_INTERLEAVE", "nodes": "0", "flags": ["MPOL_F_NUMA_BALANCING"]},
     "linux.memoryPolicy.flags: MPOL_F_NUMA_BALANCING only goes with MPOL_BIND or "
     "MPOL_PREFERRED_MANY, not MPOL_INTERLEAVE"),
]  # fmt: skip


@pytest.mark.parametrize("policy, problem", MEMORY_POLICY_CASES)
def test_memory_policy_create_and_validate_agree(policy, problem, tmp_path: Path) -> None:
    config = _config(memoryPolicy=policy)
    assert _create_error(config, tmp_path) == problem
    assert _rules_of_validate(config, tmp_path) == ([problem] if problem else [])


@pytest.mark.parametrize(
    "policy, problem",
    [
        ("bind", "linux.memoryPolicy: must be an object, not a string"),
        ({"mode": 2}, "linux.memoryPolicy.mode: must be a string, not an integer"),
        ({"mode": "MPOL_BIND", "nodes": 0},
         "linux.memoryPolicy.nodes: must be a string, not an integer"),
        ({"mode": "MPOL_BIND", "nodes": "0", "flags": "MPOL_F_STATIC_NODES"},
         "linux.memoryPolicy.flags: must be an array, not a string"),
        ({"mode": "MPOL_BIND", "nodes": "0", "flags": [1]},
         "linux.memoryPolicy.flags[0]: must be a string, not an integer"),
    ],
)  # fmt: skip
def test_memory_policy_types_at_create(policy, problem, tmp_path: Path) -> None:
    assert _create_error(_config(memoryPolicy=policy), tmp_path) == problem


def test_plan_memory_policy() -> None:
    assert mempolicy.plan_memory_policy(None) is None
    plan = mempolicy.plan_memory_policy(
        {"mode": "MPOL_BIND", "nodes": "0,2,65", "flags": ["MPOL_F_STATIC_NODES"]}
    )
    assert plan.mode == 2 | (1 << 15)
    words = [int.from_bytes(plan.nodemask[i : i + 8], sys.byteorder) for i in range(0, 16, 8)]
    assert words == [0b101, 0b10] and plan.maxnode == 129
    assert plan.description == "MPOL_BIND nodes 0,2,65 MPOL_F_STATIC_NODES"
    local = mempolicy.plan_memory_policy({"mode": "MPOL_LOCAL"})
    assert (local.mode, local.nodemask, local.maxnode) == (4, b"", 0)
    with pytest.raises(PyociError) as err:
        mempolicy.plan_memory_policy({"mode": "MPOL_BIND", "nodes": "1-0"})
    assert err.value.msg == "linux.memoryPolicy.nodes: `1-0`: the range 1-0 runs backwards"


def _kernel_accepts(policy: dict) -> bool:
    """set_mempolicy(2) itself, in a forked child, with the mode/flags/nodes as given."""
    modes, flags = rules.MPOL_MODES, rules.MPOL_FLAGS
    mode = modes[policy["mode"]] | sum(flags[f] for f in policy.get("flags", []))
    nodes = rules.parse_id_list(policy.get("nodes", ""), "node", rules.MAX_NODE)
    mask, maxnode = mempolicy.nodemask(nodes)
    plan = mempolicy.MemoryPolicyPlan(mode, mask, maxnode, "probe")

    def body() -> None:
        mempolicy.apply_memory_policy(plan)

    code, _ = _in_child(body)
    return code == 0


def _numa_kernel() -> None:
    from pyoci.linux import sysbind  # noqa: F401  (ctypes before the children fork)

    if not os.path.exists("/proc/self/numa_maps"):
        pytest.skip("this kernel has no NUMA support (no /proc/self/numa_maps)")


def test_memory_policy_rules_match_the_kernel() -> None:
    """Every mode with every flag combination, without nodes and with node 0 (which every
    host has): pyoci's rules refuse exactly what set_mempolicy(2) refuses, so `create` reports
    with a field name what the init would otherwise meet as EINVAL."""
    _numa_kernel()
    flag_sets = [[]] + [[f] for f in rules.MPOL_FLAGS]
    flag_sets += [["MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"]]
    flag_sets += [["MPOL_F_NUMA_BALANCING", "MPOL_F_STATIC_NODES"]]
    disagree = []
    for mode in rules.MPOL_MODES:
        for flags in flag_sets:
            for nodes in ("", "0"):
                policy = {"mode": mode, "nodes": nodes, "flags": flags}
                ours = not rules.memory_policy_problems({"linux": {"memoryPolicy": policy}})
                if ours != _kernel_accepts(policy):
                    disagree.append((policy, "pyoci accepts" if ours else "pyoci refuses"))
    # NUMA_BALANCING with PREFERRED_MANY: accepted since Linux 6.10; older kernels refuse it
    # (an EINVAL at create then, named by apply_memory_policy).
    release = tuple(int(x) for x in os.uname().release.split("-")[0].split(".")[:2])
    if release < (6, 10):
        disagree = [d for d in disagree if d[0]["mode"] != "MPOL_PREFERRED_MANY"]
    assert disagree == []


def test_apply_memory_policy_survives_execve() -> None:
    """set_mempolicy(2): the policy is the thread's, inherited by fork and kept across execve;
    /proc/PID/numa_maps shows it on the new program's mappings."""
    _numa_kernel()
    plan = mempolicy.plan_memory_policy({"mode": "MPOL_BIND", "nodes": "0"})
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.dup2(write_end, 1)
            mempolicy.apply_memory_policy(plan)
            os.execv("/bin/sh", ["sh", "-c", "head -n 1 /proc/self/numa_maps"])
        finally:
            os._exit(127)
    os.close(write_end)
    with os.fdopen(read_end) as f:
        line = f.read()
    os.waitpid(pid, 0)
    assert line.split()[1] == "bind:0", line


def test_apply_memory_policy_error_names_the_field_and_the_hosts_nodes() -> None:
    """A node the host does not have: the kernel's EINVAL, said with the field and the nodes
    this host has (read when planning: the init cannot after the pivot)."""
    _numa_kernel()
    with open("/sys/devices/system/node/has_memory") as f:
        have = rules.parse_id_list(f.read().strip(), "node", rules.MAX_NODE)
    missing = max(have) + 1
    plan = mempolicy.plan_memory_policy({"mode": "MPOL_BIND", "nodes": str(missing)})
    code, text = _in_child(lambda: mempolicy.apply_memory_policy(plan))
    assert code == 1
    assert text == (
        f"PyociError: linux.memoryPolicy: set_mempolicy MPOL_BIND nodes {missing}: invalid "
        f"argument (this host's memory nodes: {plan.host_nodes})"
    )


# --- process.execCPUAffinity -------------------------------------------------------------------
def test_exec_cpu_affinity_lists_are_checked_at_create_and_by_validate(tmp_path: Path) -> None:
    config = _config()
    config["process"]["execCPUAffinity"] = {"initial": "0", "final": "3-1"}
    problem = "process.execCPUAffinity.final: `3-1`: the range 3-1 runs backwards"
    assert _create_error(config, tmp_path) == problem
    assert _rules_of_validate(config, tmp_path) == [problem]
    config["process"]["execCPUAffinity"] = {"initial": 7}
    assert _create_error(config, tmp_path) == (
        "process.execCPUAffinity.initial: must be a string, not an integer"
    )


def test_exec_process_file_gets_the_same_checks() -> None:
    """`exec --process FILE` builds a Process, not a Spec: the rules run there too."""
    raw = {"args": ["true"], "cwd": "/", "execCPUAffinity": {"initial": "x"}}
    with pytest.raises(PyociError) as err:
        Process(raw, "process")
    assert err.value.msg == (
        "process.execCPUAffinity.initial: `x` is not a list of CPUs such as 0-3,7 (`x`)"
    )


def test_plan_exec_cpu_affinity() -> None:
    assert affinity.plan_exec_cpu_affinity(None) is None
    assert affinity.plan_exec_cpu_affinity({}) is None
    assert affinity.plan_exec_cpu_affinity({"initial": "", "final": ""}) is None
    plan = affinity.plan_exec_cpu_affinity({"initial": "1", "final": "0-2,5"})
    assert (plan.initial, plan.final) == ([1], [0, 1, 2, 5])
    only_final = affinity.plan_exec_cpu_affinity({"final": "0"})
    assert (only_final.initial, only_final.final) == (None, [0])
    with pytest.raises(PyociError) as err:
        affinity.plan_exec_cpu_affinity({"final": "0,a"})
    assert (
        err.value.msg
        == "process.execCPUAffinity.final: `0,a` is not a list of CPUs such as 0-3,7 (`a`)"
    )


def test_initial_then_final_affinity_in_a_child() -> None:
    """initial pins the runtime's process (and returns its old mask, to restore); final pins
    the process about to exec. Observed with sched_getaffinity and /proc/self/status."""
    cpus = sorted(os.sched_getaffinity(0))
    plan = affinity.plan_exec_cpu_affinity({"initial": str(cpus[-1]), "final": str(cpus[0])})

    def body() -> str:
        before = os.sched_getaffinity(0)
        previous = affinity.apply_initial_affinity(plan)
        after_initial = os.sched_getaffinity(0)
        affinity.restore_affinity(previous)
        restored = os.sched_getaffinity(0)
        affinity.apply_final_affinity(plan)
        with open("/proc/self/status") as f:
            line = next(x for x in f if x.startswith("Cpus_allowed_list:"))
        assert previous == before and restored == before, (previous, before, restored)
        return f"{sorted(after_initial)} {line.split()[1]}"

    code, text = _in_child(body)
    assert (code, text) == (0, f"[{cpus[-1]}] {cpus[0]}")


def test_final_affinity_on_no_usable_cpu_names_the_field() -> None:
    unusable = max(os.sched_getaffinity(0)) + 1
    if unusable > rules.MAX_CPU:
        pytest.skip("every CPU number is usable here")
    plan = affinity.plan_exec_cpu_affinity({"final": str(unusable)})
    code, text = _in_child(lambda: affinity.apply_final_affinity(plan))
    allowed = affinity._cpu_list(os.sched_getaffinity(0))  # noqa: SLF001
    assert (code, text) == (
        1,
        f"PyociError: process.execCPUAffinity.final: `{unusable}`: none of these CPUs is usable "
        f"here (allowed: {allowed})",
    )


def test_cpu_list_text() -> None:
    assert affinity._cpu_list({0, 1, 2, 5, 7, 8}) == "0-2,5,7-8"  # noqa: SLF001


# --- security labels ---------------------------------------------------------------------------
NO_LSM: frozenset[str] = frozenset()


@pytest.mark.parametrize(
    "field, value, problem",
    [
        ("apparmorProfile", "unconfined",
         "process.apparmorProfile: AppArmor is not enabled on this host: `unconfined` cannot be "
         "applied"),
        ("apparmorProfile", "docker-default",
         "process.apparmorProfile: AppArmor is not enabled on this host: `docker-default` cannot "
         "be applied"),
        ("selinuxLabel", "system_u:system_r:container_t:s0",
         "process.selinuxLabel: SELinux is not enabled on this host: "
         "`system_u:system_r:container_t:s0` cannot be applied"),
        ("apparmorProfile", "", None),
        ("selinuxLabel", "", None),
    ],
)  # fmt: skip
def test_process_labels_without_the_lsm(field: str, value: str, problem) -> None:
    found = rules.config_process_problems({"process": {field: value}}, NO_LSM)
    assert [f"{rules.dotted(p)}: {r}" for p, r in found] == ([problem] if problem else [])


def test_mount_label_without_selinux() -> None:
    config = {"linux": {"mountLabel": "system_u:object_r:container_file_t:s0"}}
    assert rules.mount_label_problems(config, NO_LSM) == [
        (
            ("linux", "mountLabel"),
            "SELinux is not enabled on this host: `system_u:object_r:container_file_t:s0` "
            "cannot be applied",
        )
    ]
    assert rules.mount_label_problems({"linux": {"mountLabel": ""}}, NO_LSM) == []


def test_labels_where_the_lsm_is_enabled_say_pyoci_does_not_apply_them() -> None:
    config = {"process": {"apparmorProfile": "p", "selinuxLabel": "l"}, "linux": {}}
    config["linux"]["mountLabel"] = "m"
    both = frozenset({"apparmor", "selinux"})
    found = rules.config_process_problems(config, both) + rules.mount_label_problems(config, both)
    assert [f"{rules.dotted(p)}: {r}" for p, r in found] == [
        "process.apparmorProfile: AppArmor is enabled on this host, but pyoci does not apply "
        "AppArmor labels (`p` would be ignored)",
        "process.selinuxLabel: SELinux is enabled on this host, but pyoci does not apply SELinux "
        "labels (`l` would be ignored)",
        "linux.mountLabel: SELinux is enabled on this host, but pyoci does not apply SELinux "
        "labels (`m` would be ignored)",
    ]


def test_host_lsms_reads_what_runc_reads() -> None:
    lsms = rules.host_lsms()
    try:
        with open("/sys/module/apparmor/parameters/enabled") as f:
            apparmor = f.read().startswith("Y")
    except OSError:
        apparmor = False
    assert ("apparmor" in lsms) >= apparmor
    assert ("selinux" in lsms) >= os.path.exists("/sys/fs/selinux/enforce")


@pytest.mark.parametrize(
    "where, value",
    [("process.apparmorProfile", "unconfined"), ("process.selinuxLabel", "x"),
     ("linux.mountLabel", "y")],
)  # fmt: skip
def test_labels_on_this_host_create_and_validate_agree(where: str, value: str, tmp_path) -> None:
    """On this host (whatever its LSMs): a label is refused by both, with the same line."""
    section, key = where.split(".")
    config = _config()
    config[section][key] = value
    problem = _create_error(config, tmp_path)
    assert problem is not None and problem.startswith(f"{where}: ")
    assert _rules_of_validate(config, tmp_path) == [problem]


def test_labels_in_an_exec_process_file_are_refused() -> None:
    raw = {"args": ["true"], "cwd": "/", "apparmorProfile": "unconfined"}
    if "apparmor" in rules.host_lsms():
        pytest.skip("AppArmor is enabled here: the message differs (see the test above)")
    with pytest.raises(PyociError) as err:
        Process(raw, "process")
    assert err.value.msg.startswith("process.apparmorProfile: AppArmor is not enabled")


def test_busybox_and_runc_spec_defaults_carry_no_label(tmp_path: Path) -> None:
    """What clients send on a host without AppArmor/SELinux (docker, podman: no
    apparmorProfile, no labels) still passes."""
    assert _create_error(_config(), tmp_path) is None
