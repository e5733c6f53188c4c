"""runtime-spec 1.3.0 in real containers: the version pyoci reports, linux.memoryPolicy (seen
in /proc/self/numa_maps, for the init's program and an exec'd one), process.execCPUAffinity
(for exec'd processes, as config.md says; seen in /proc/self/status), and security labels
refused where this host cannot apply them, as runc refuses them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid

import pytest
from helpers import PURE_V2_VIEW, one_line_error

from pyoci import rules

NUMA_HEAD = "head -n 1 /proc/self/numa_maps | cut -d ' ' -f 2"
CPUS = "grep Cpus_allowed_list /proc/self/status | cut -f 2"


def _host_cpus() -> list[int]:
    return sorted(os.sched_getaffinity(0))


def _host_memory_nodes() -> str:
    with open("/sys/devices/system/node/has_memory") as f:
        return f.read().strip()


def _running(pyoci, bundle, new_id, **kwargs) -> str:
    cid = new_id()
    assert pyoci.run(bundle(["sleep", "1000"], **kwargs), cid, "--detach").returncode == 0
    return cid


def _process_file(tmp_path, args: list[str], **fields) -> str:
    path = tmp_path / f"process-{uuid.uuid4().hex[:8]}.json"
    path.write_text(json.dumps({"args": args, "cwd": "/", "env": ["PATH=/bin"], **fields}))
    return str(path)


def _linux(**fields):
    def patch(config: dict) -> None:
        config["linux"].update(fields)

    return patch


# --- the version -------------------------------------------------------------------------------
def test_version_features_and_spec_say_1_3_0(pyoci, tmp_path):
    assert "spec: 1.3.0" in pyoci("--version").stdout.splitlines()
    features = json.loads(pyoci("features").stdout)
    assert features["ociVersionMax"] == "1.3.0"
    assert features["linux"]["memoryPolicy"]["modes"][0] == "MPOL_DEFAULT"
    assert features["linux"]["netDevices"] == {"enabled": True}
    (tmp_path / "new").mkdir()
    assert pyoci("spec", "--bundle", str(tmp_path / "new")).returncode == 0
    assert json.loads((tmp_path / "new" / "config.json").read_text())["ociVersion"] == "1.3.0"


def test_state_and_hooks_report_the_runtimes_version(pyoci, bundle, new_id, tmp_path):
    """runtime.md: the state's ociVersion is the version the state complies with: pyoci's
    1.3.0, whatever the bundle's config says (runc prints its own too)."""
    seen = tmp_path / "hook-state.json"
    hook = {"path": "/bin/sh", "args": ["sh", "-c", f"cat > {seen}"]}
    b = bundle(["true"], ociVersion="1.0.0", hooks={"createRuntime": [hook]})
    cid = new_id()
    pyoci.create_ok(b, cid)
    assert pyoci.state(cid)["ociVersion"] == "1.3.0"
    assert json.loads(seen.read_text())["ociVersion"] == "1.3.0"
    assert pyoci("delete", "--force", cid).returncode == 0
    pyoci.assert_nothing_left()


# --- security labels ---------------------------------------------------------------------------
LABELS = [
    ("process", "apparmorProfile", "unconfined", "apparmor"),
    ("process", "apparmorProfile", "pyoci-test-not-loaded", "apparmor"),
    ("process", "selinuxLabel", "system_u:system_r:container_t:s0", "selinux"),
    ("linux", "mountLabel", "system_u:object_r:container_file_t:s0", "selinux"),
]


@pytest.mark.parametrize("section, key, value, lsm", LABELS)
def test_a_label_this_host_cannot_apply_fails_create(
    pyoci, bundle, new_id, section, key, value, lsm
):
    """Ignoring it would start the container without the confinement its config asks for."""

    def patch(config: dict) -> None:
        config[section][key] = value

    b = bundle(["true"], patch=patch)
    result = pyoci.create(b, new_id())
    assert result.returncode == 1
    line = one_line_error(result.stderr)
    name = rules.LSM_NAMES[lsm]
    if lsm in rules.host_lsms():
        assert f"{section}.{key}: {name} is enabled on this host, but pyoci does not" in line
    else:
        assert line == (
            f"pyoci: {section}.{key}: {name} is not enabled on this host: `{value}` cannot be "
            "applied"
        )
    problems = pyoci("validate", "--bundle", str(b.path))
    assert problems.returncode != 0 and line[len("pyoci: ") :] in problems.stdout + problems.stderr
    pyoci.assert_nothing_left()


@pytest.mark.parametrize("section, key, value, lsm", LABELS[:1] + LABELS[2:])
def test_runc_refuses_the_same_labels(bundle, new_id, tmp_path, section, key, value, lsm):
    """The behaviour matched: runc fails too (AppArmor: writing /proc/self/attr/exec; SELinux:
    its validator; mountLabel: the context= mount option), "unconfined" included."""
    runc = shutil.which("runc") or "/usr/sbin/runc"
    if not os.access(runc, os.X_OK) or lsm in rules.host_lsms():
        pytest.skip("needs runc, on a host without the LSM")

    def patch(config: dict) -> None:
        config[section][key] = value

    b = bundle(["true"], patch=patch)
    root, cid = str(tmp_path / "runc-root"), new_id("runc")
    try:
        result = subprocess.run(
            [runc, "--root", root, "run", "--bundle", str(b.path), cid],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
    finally:
        subprocess.run([runc, "--root", root, "delete", "--force", cid], capture_output=True)
    assert result.returncode != 0, result


def test_empty_labels_are_no_labels(pyoci, bundle, new_id):
    """ "" is no profile and no label (as runc): what a client without an LSM may send."""

    def patch(config: dict) -> None:
        config["process"].update(apparmorProfile="", selinuxLabel="")
        config["linux"]["mountLabel"] = ""

    result = pyoci.run(bundle(["true"], patch=patch), new_id())
    assert result.returncode == 0, result.stderr
    pyoci.assert_nothing_left()


def test_exec_process_file_with_a_label_or_a_bad_cpu_list(pyoci, bundle, new_id, tmp_path):
    cid = _running(pyoci, bundle, new_id)
    labelled = _process_file(tmp_path, ["true"], apparmorProfile="unconfined")
    result = pyoci("exec", "--process", labelled, cid)
    assert result.returncode == 1
    assert one_line_error(result.stderr).startswith("pyoci: process.apparmorProfile: AppArmor")
    bad = _process_file(tmp_path, ["true"], execCPUAffinity={"final": "1-0"})
    result = pyoci("exec", "--process", bad, cid)
    assert result.returncode == 1
    assert one_line_error(result.stderr) == (
        "pyoci: process.execCPUAffinity.final: `1-0`: the range 1-0 runs backwards"
    )
    pyoci("delete", "--force", cid)
    pyoci.assert_nothing_left()


@pytest.mark.parametrize(
    "flag, field",
    [("--apparmor", "process.apparmorProfile"), ("--process-label", "process.selinuxLabel")],
)
def test_exec_label_flags_are_refused_like_the_config_fields(pyoci, bundle, new_id, flag, field):
    """runc's `exec --apparmor P` / `--process-label L` set the process's labels (and fail on
    a host without the LSM): not accepted and ignored."""
    cid = _running(pyoci, bundle, new_id)
    result = pyoci("exec", flag, "unconfined", cid, "true")
    assert result.returncode == 1
    assert one_line_error(result.stderr).startswith(f"pyoci: {field}: ")
    pyoci("delete", "--force", cid)
    pyoci.assert_nothing_left()


# --- linux.memoryPolicy ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "policy, shown",
    [
        ({"mode": "MPOL_BIND", "nodes": "0"}, "bind:0"),
        ({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]}, "bind=static:0"),
        ({"mode": "MPOL_INTERLEAVE", "nodes": "0"}, "interleave:0"),
        ({"mode": "MPOL_PREFERRED", "nodes": "0", "flags": ["MPOL_F_RELATIVE_NODES"]},
         "prefer=relative:0"),
        ({"mode": "MPOL_LOCAL"}, "local"),
        ({"mode": "MPOL_DEFAULT"}, "default"),
    ],
)  # fmt: skip
def test_memory_policy_of_the_containers_program(pyoci, bundle, new_id, policy, shown):
    """set_mempolicy(2) in the init: kept across execve, inherited by the program's children
    (the shell's `head` here), shown by /proc/self/numa_maps."""
    b = bundle(NUMA_HEAD, patch=_linux(memoryPolicy=policy))
    result = pyoci.run(b, new_id())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == shown
    pyoci.assert_nothing_left()


def test_memory_policy_is_refused_at_create_with_the_field(pyoci, bundle, new_id):
    bad = {"mode": "MPOL_DEFAULT", "nodes": "0-7"}
    result = pyoci.create(bundle(["true"], patch=_linux(memoryPolicy=bad)), new_id())
    assert result.returncode == 1
    assert one_line_error(result.stderr) == (
        "pyoci: linux.memoryPolicy.nodes: MPOL_DEFAULT takes no nodes, not `0-7`"
    )
    unknown = {"mode": "MPOL_PREFERRED", "nodes": "0", "flags": ["badflag"]}
    result = pyoci.create(bundle(["true"], patch=_linux(memoryPolicy=unknown)), new_id())
    assert one_line_error(result.stderr).startswith(
        "pyoci: linux.memoryPolicy.flags[0]: unknown flag `badflag`"
    )
    pyoci.assert_nothing_left()


def test_memory_policy_on_a_node_this_host_lacks(pyoci, bundle, new_id):
    """What only the kernel can say (no such node here) still fails `create`, in one line
    naming the field and the host's memory nodes."""
    have = _host_memory_nodes()
    missing = max(rules.parse_id_list(have, "node", rules.MAX_NODE)) + 1
    policy = {"mode": "MPOL_BIND", "nodes": str(missing)}
    result = pyoci.create(bundle(["true"], patch=_linux(memoryPolicy=policy)), new_id())
    assert result.returncode == 1
    assert one_line_error(result.stderr) == (
        f"pyoci: linux.memoryPolicy: set_mempolicy MPOL_BIND nodes {missing}: invalid argument "
        f"(this host's memory nodes: {have})"
    )
    pyoci.assert_nothing_left()


def test_exec_gets_the_containers_memory_policy(pyoci, bundle, new_id):
    """As runc: an exec'd process starts with the container's policy too (it is not a child
    of the init, so it must be set again)."""
    policy = {"mode": "MPOL_PREFERRED", "nodes": "0", "flags": ["MPOL_F_RELATIVE_NODES"]}
    cid = _running(pyoci, bundle, new_id, patch=_linux(memoryPolicy=policy))
    result = pyoci("exec", cid, "sh", "-c", NUMA_HEAD)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "prefer=relative:0"
    pyoci("delete", "--force", cid)
    pyoci.assert_nothing_left()


# --- process.execCPUAffinity -------------------------------------------------------------------
def test_exec_cpu_affinity_is_not_for_the_init(pyoci, bundle, new_id):
    """config.md: "This setting is not applicable to the container's init process"."""
    cpus = _host_cpus()
    affinity = {"initial": str(cpus[-1]), "final": str(cpus[0])}
    result = pyoci.run(bundle(CPUS, process={"execCPUAffinity": affinity}), new_id())
    assert result.returncode == 0, result.stderr
    assert rules.parse_id_list(result.stdout.strip(), "CPU", rules.MAX_CPU) == cpus
    pyoci.assert_nothing_left()


def test_exec_final_affinity_from_a_process_file(pyoci, bundle, new_id, tmp_path):
    cpus = _host_cpus()
    cid = _running(pyoci, bundle, new_id)
    for final in sorted({str(cpus[0]), str(cpus[-1]), f"{cpus[0]}-{cpus[-1]}"}):
        spec = {"initial": str(cpus[-1]), "final": final}
        pfile = _process_file(tmp_path, ["sh", "-c", CPUS], execCPUAffinity=spec)
        result = pyoci("exec", "--process", pfile, cid)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == final
    pyoci("delete", "--force", cid)
    pyoci.assert_nothing_left()


def test_exec_affinity_from_config_json(pyoci, bundle, new_id):
    """`exec CMD` starts from config.json's process: its execCPUAffinity applies."""
    cpus = _host_cpus()
    cid = _running(pyoci, bundle, new_id, process={"execCPUAffinity": {"final": str(cpus[-1])}})
    result = pyoci("exec", cid, "sh", "-c", CPUS)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(cpus[-1])
    pyoci("delete", "--force", cid)
    pyoci.assert_nothing_left()


def test_exec_on_a_cpu_the_container_cannot_use(pyoci, bundle, new_id, tmp_path):
    unusable = _host_cpus()[-1] + 1
    cid = _running(pyoci, bundle, new_id)
    pfile = _process_file(tmp_path, ["true"], execCPUAffinity={"final": str(unusable)})
    result = pyoci("exec", "--process", pfile, cid)
    assert result.returncode == 1
    assert one_line_error(result.stderr).startswith(
        f"pyoci: process.execCPUAffinity.final: `{unusable}`: none of these CPUs is usable here"
    )
    pyoci("delete", "--force", cid)
    pyoci.assert_nothing_left()


def test_initial_affinity_without_final_is_left_to_the_kernel(pyoci, bundle, new_id, tmp_path):
    """`initial` is where the runtime runs the process into the container's cgroups; with no
    `final`, pyoci changes nothing after that (config.md 1.3.0: "the final affinity is
    determined by the Linux kernel"). Joining a cpuset keeps a user-set mask that fits in it
    since Linux 6.2 (older kernels reset it to the cpuset's CPUs); with no cpuset at all (a pure
    cgroup-v2 view without the controller) `initial` stays in any case."""
    cpus = _host_cpus()
    if len(cpus) < 2:
        pytest.skip("needs two CPUs")
    release = tuple(int(x) for x in os.uname().release.split("-")[0].split(".")[:2])
    cid = _running(pyoci, bundle, new_id)
    pfile = _process_file(tmp_path, ["sh", "-c", CPUS], execCPUAffinity={"initial": str(cpus[1])})
    result = pyoci("exec", "--process", pfile, cid)
    assert result.returncode == 0, result.stderr
    with open(f"/proc/{pyoci.state(cid)['pid']}/status") as f:
        cpuset_cpus = next(x for x in f if x.startswith("Cpus_allowed_list")).split()[1]
    assert result.stdout.strip() == (str(cpus[1]) if release >= (6, 2) else cpuset_cpus)
    pyoci("delete", "--force", cid)

    cid = new_id()
    plain = pyoci.argv
    pyoci.argv = lambda args, global_args=(): [*PURE_V2_VIEW, *plain(args, global_args)]
    try:
        assert pyoci.run(bundle(["sleep", "1000"]), cid, "--detach").returncode == 0
        result = pyoci("exec", "--process", pfile, cid)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == str(cpus[1])
        pyoci("delete", "--force", cid)
    finally:
        pyoci.argv = plain
    pyoci.assert_nothing_left()
