"""pyoci as a Kubernetes RuntimeClass: containerd's CRI plugin, driven over gRPC the way kubelet
drives it, with the runtime handler `pyoci` (an io.containerd.runc.v2 shim whose BinaryName is
pyoci) and, in the same test, the default handler `runc`.

Every test runs its scenario once per handler, each in a pod of its own, and collects what a
user of the pod would observe (statuses, exit codes, outputs, namespaces, cgroup values); the
scenario's expectations are checked on runc's observations (the reference: this keeps the test
itself honest), then pyoci's must be equal to runc's. Leaving a pod (StopPodSandbox,
RemovePodSandbox) fails the test if any runtime state, process, cgroup, mount or network
namespace of it remains.

The private containerd is tools/cri-containerd.py's (README "Kubernetes (CRI)"): its own root,
state, socket and config, in a network namespace and a mount namespace of its own, CNI from
Debian's containernetworking-plugins, a sandbox image made from the busybox rootfs; it is
stopped and all of it removed at the end of the module.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

for _module, _package in (
    ("grpc", "grpcio"),
    ("cri_api", "container-runtime-interface-api"),
    ("websocket", "websocket-client"),
):
    pytest.importorskip(_module, reason=f"{_package} missing (test extras: make venv)")

import grpc  # noqa: E402
from cri_api.v1 import api_pb2 as pb  # noqa: E402
from cri_client import (  # noqa: E402
    Cri,
    Pod,
    besteffort,
    container_security,
    http_get_in_netns,
    load_tool,
    read,
    wait_for,
)

pytestmark = pytest.mark.clients

HANDLERS = ("runc", "pyoci")
PYOCI = os.environ.get("PYOCI") or str(Path(sys.executable).parent / "pyoci")  # as conftest
MiB = 1 << 20
STATUS_KEYS = ("Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb",
               "NoNewPrivs", "Seccomp")  # fmt: skip


@pytest.fixture(scope="module")
def cri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cri]:
    tool = load_tool()
    why = tool.CriContainerd.missing()
    if why:
        pytest.skip(why)
    if not os.access(PYOCI, os.X_OK):
        pytest.skip(f"pyoci not found at {PYOCI}")
    runc = shutil.which("runc")
    if runc is None:
        pytest.skip("runc, the reference handler, is not installed (make system)")
    top = tmp_path_factory.mktemp("cri")
    if len(str(top)) > 60:  # unix socket paths hold 108 bytes, the shims' included
        top.rmdir()
        top = Path("/tmp") / f"pyoci-cri-{os.getpid()}"
        top.mkdir()
    daemon = tool.CriContainerd(top, pyoci=PYOCI, runc=runc)
    client = None
    clean = False
    try:
        daemon.start()
        client = Cri(daemon)
        client.wait_ready()
        yield client
        client.remove_all()
        clean = True
    finally:
        if client is not None:
            client.close()
        netns = daemon.netns
        notes = daemon.stop()
        # everything is gone: daemon, shims, containers, namespaces, cgroups, the directory;
        # and after clean removals, containerd's TERM was all it took
        assert not daemon.processes(), daemon.processes()
        assert not (clean and notes), notes
        assert not top.exists(), f"{top} remains: {notes}"
        assert not tool.cgroup_dirs(daemon.cgroup_root), notes
        assert not os.path.exists(f"/run/netns/{netns}")


def both(cri: Cri, name: str, scenario: Callable[[Pod], dict], **pod_options) -> dict:
    """Run `scenario` in a pod `name` with each handler; {handler: observations}. A CRI call
    that fails is reported with the handler and containerd's errors meanwhile."""
    results = {}
    for handler in HANDLERS:
        since = cri.log_size()
        try:
            with cri.pod(handler, name, **pod_options) as pod:
                results[handler] = scenario(pod)
        except grpc.RpcError as e:
            raise AssertionError(
                f"[{handler}] {e.code().name}: {e.details()}\n"
                f"containerd's errors:\n{cri.log_errors(since)}"
            ) from e
    return results


def same_as_runc(results: dict) -> None:
    assert results["pyoci"] == results["runc"], (
        "pyoci's observations differ from runc's:\n"
        f"runc:  {json.dumps(results['runc'], indent=1, sort_keys=True)}\n"
        f"pyoci: {json.dumps(results['pyoci'], indent=1, sort_keys=True)}"
    )


def status_lines(text: str, keys: tuple[str, ...] = STATUS_KEYS) -> dict[str, str]:
    """The lines of /proc/PID/status with these keys: {key: value}."""
    found = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in keys:
            found[key] = " ".join(value.split())
    return found


def exited(status) -> dict:
    return {"exit_code": status.exit_code, "reason": status.reason}


def rpc_error(call: Callable[[], object]) -> dict:
    try:
        call()
    except grpc.RpcError as e:
        return {"code": e.code().name, "details": e.details()}
    return {}


# --- lifecycle -----------------------------------------------------------------------------------
# The trap first: the test stops the container once resolv.conf is printed, and a TERM that
# came before the trap would be ignored by this PID 1 (then killed after the grace period).
MAIN = (
    "trap 'echo got-TERM; exit 0' TERM; echo started; hostname; cat /etc/resolv.conf;"
    " echo bye > /dev/termination-log; while :; do sleep 0.1; done"
)


def test_pod_lifecycle(cri: Cri) -> None:
    """RunPodSandbox, Create/StartContainer, ContainerStatus, StopContainer (TERM), Remove-
    Container, StopPodSandbox, RemovePodSandbox; the pod's network and the files kubelet and
    containerd mount (resolv.conf from dns_config, hostname, termination-log)."""

    def scenario(pod: Pod) -> dict:
        obs = {}
        status = pod.sandbox_status().status
        subnet = ipaddress.ip_network(load_tool().POD_SUBNET)
        obs["sandbox"] = pb.PodSandboxState.Name(status.state)
        obs["ip_in_subnet"] = ipaddress.ip_address(status.network.ip) in subnet
        listed = [p for p in cri.pods() if p.id == pod.id]
        obs["listed_handler"] = listed[0].runtime_handler if listed else None
        # the handler's runtime made the sandbox: its --root (Root/k8s.io) holds its state
        obs["state_in_handler_root"] = [
            h for h in HANDLERS if (cri.daemon.runtime_root(h) / pod.id).is_dir()
        ] == [pod.handler]
        cid = pod.create("main", ["sh", "-c", MAIN])
        obs["created_then"] = pb.ContainerState.Name(pod.status(cid).state)
        # what the leftover check will look for: containerd's mounts for the pod
        mounts = sorted(set(cri.mounts()) - pod.mounts_before)
        obs["mounts"] = sorted(
            m.rsplit("/", 1)[1] if "/netns/" not in m else "netns" for m in mounts
        )
        wait_for("main's output", lambda: "ndots" in pod.output(cid))
        obs["output"] = pod.output(cid)
        t0 = time.monotonic()
        pod.stop_container(cid, timeout=10)
        obs["stop_took_under_5s"] = time.monotonic() - t0 < 5
        status = pod.status(cid)
        obs["stopped"] = {"state": pb.ContainerState.Name(status.state), **exited(status)}
        obs["started_before_finished"] = 0 < status.started_at <= status.finished_at
        obs["last_line"] = pod.output(cid).splitlines()[-1]
        obs["termination_log"] = read(pod.dir / "containers" / "main" / "termination-log")
        pod.remove_container(cid)
        request = pb.ListContainersRequest(filter=pb.ContainerFilter(pod_sandbox_id=pod.id))
        obs["containers_after_remove"] = len(cri.call("ListContainers", request).containers)
        pod.stop()
        obs["sandbox_after_stop"] = pb.PodSandboxState.Name(pod.sandbox_status().status.state)
        return obs

    results = both(cri, "lifecycle", scenario)
    runc = results["runc"]
    assert runc["sandbox"] == "SANDBOX_READY" and runc["ip_in_subnet"], runc
    assert runc["state_in_handler_root"]
    assert runc["listed_handler"] == "runc"
    assert results["pyoci"]["listed_handler"] == "pyoci"
    results["pyoci"]["listed_handler"] = "runc"  # the one difference meant to be there
    assert runc["created_then"] == "CONTAINER_RUNNING"
    assert runc["mounts"] == ["netns", "rootfs", "rootfs", "shm"], runc["mounts"]
    assert runc["output"].startswith("started\nlifecycle\n"), runc["output"]
    assert "nameserver 10.96.0.10" in runc["output"], runc["output"]
    assert runc["stopped"] == {"state": "CONTAINER_EXITED", "exit_code": 0, "reason": "Completed"}
    assert runc["last_line"] == "got-TERM" and runc["stop_took_under_5s"]
    assert runc["started_before_finished"]
    assert runc["termination_log"] == "bye\n"
    assert runc["containers_after_remove"] == 0
    assert runc["sandbox_after_stop"] == "SANDBOX_NOTREADY"
    same_as_runc(results)


NS_KINDS = ("net", "ipc", "uts", "pid", "mnt")
NS_SCRIPT = "for n in " + " ".join(NS_KINDS) + "; do readlink /proc/self/ns/$n; done"
SERVER = (
    "mkdir -p /www && echo hello-from-server > /www/index.html && echo shm-data > /dev/shm/marker"
    " && exec httpd -f -p 8080 -h /www"
)


def test_two_containers_share_the_pod(cri: Cri) -> None:
    """A server and a client container in one pod: the client reaches the server on
    localhost; both are in the sandbox's network, IPC and UTS namespaces (and see its
    /dev/shm), each in its own PID and mount namespace; the node reaches the pod's IP."""

    def scenario(pod: Pod) -> dict:
        server = pod.create("server", ["sh", "-c", SERVER])
        client = pod.create("client", ["sleep", "1000"])
        get = ["wget", "-qO-", "http://127.0.0.1:8080/index.html"]
        wait_for("the server", lambda: pod.exec_sync(client, get)[0] == 0)
        obs = {"via_localhost": pod.exec_sync(client, get)}
        sandbox_pid = pod.pids[pod.id][0]
        sandbox = [os.readlink(f"/proc/{sandbox_pid}/ns/{kind}") for kind in NS_KINDS]
        server_ns = pod.exec_sync(server, ["sh", "-c", NS_SCRIPT])[1].split()
        client_ns = pod.exec_sync(client, ["sh", "-c", NS_SCRIPT])[1].split()
        obs["namespaces"] = {
            kind: {
                "server_is_sandbox's": server_ns[i] == sandbox[i],
                "client_is_sandbox's": client_ns[i] == sandbox[i],
                "server_is_client's": server_ns[i] == client_ns[i],
            }
            for i, kind in enumerate(NS_KINDS)
        }
        obs["shm_seen_by_client"] = pod.exec_sync(client, ["cat", "/dev/shm/marker"])
        obs["pid_of_client_shell"] = pod.exec_sync(client, ["sh", "-c", "cat /proc/1/cmdline"])
        reply = http_get_in_netns(cri.daemon.netns_path, pod.ip, 8080, "/index.html")
        obs["node_to_pod_ip"] = reply.split("\r\n")[0], reply.rpartition("\r\n\r\n")[2]
        obs["hostnames"] = [pod.exec_sync(c, ["hostname"])[1] for c in (server, client)]
        return obs

    results = both(cri, "shared", scenario)
    runc = results["runc"]
    assert runc["via_localhost"] == (0, "hello-from-server\n", "")
    for kind in ("net", "ipc", "uts"):
        assert all(runc["namespaces"][kind].values()), (kind, runc["namespaces"])
    for kind in ("pid", "mnt"):
        assert not any(runc["namespaces"][kind].values()), (kind, runc["namespaces"])
    assert runc["shm_seen_by_client"] == (0, "shm-data\n", "")
    assert runc["pid_of_client_shell"] == (0, "sleep\x001000\x00", "")
    assert runc["node_to_pod_ip"] == ("HTTP/1.1 200 OK", "hello-from-server\n")
    assert runc["hostnames"] == ["shared\n", "shared\n"]
    same_as_runc(results)


def test_share_process_namespace(cri: Cri) -> None:
    """shareProcessNamespace: true (PID namespace mode POD): the containers join the sandbox's
    PID namespace, where the sandbox's process is 1 and each sees the others' processes."""

    def scenario(pod: Pod) -> dict:
        first = pod.create("first", ["sleep", "1001"])
        second = pod.create("second", ["sleep", "1002"])
        sandbox_pidns = os.readlink(f"/proc/{pod.pids[pod.id][0]}/ns/pid")
        return {
            # pid numbers differ: runc's setup forks more processes in the namespace
            "ps": [
                (pid == "1", args)
                for pid, args in (
                    line.split(None, 1)
                    for line in pod.exec_sync(second, ["ps", "-o", "pid,args"])[1].splitlines()[1:]
                )
            ],
            "same_pidns": [
                os.readlink(f"/proc/{pod.pids[cid][0]}/ns/pid") == sandbox_pidns
                for cid in (first, second)
            ],
            "first_sees_second": "sleep 1002" in pod.exec_sync(first, ["ps", "-o", "args"])[1],
        }

    results = both(cri, "sharepid", scenario, share_pid=True)
    runc = results["runc"]
    assert runc["ps"] == [
        (True, "/bin/sleep inf"),
        (False, "sleep 1001"),
        (False, "sleep 1002"),
        (False, "ps -o pid,args"),
    ]
    assert runc["same_pidns"] == [True, True] and runc["first_sees_second"], runc
    same_as_runc(results)


# --- exec ----------------------------------------------------------------------------------------
def test_exec_sync(cri: Cri) -> None:
    """ExecSync as kubelet's exec probes use it: output, exit code, the container's env and
    working directory, a timeout, a missing command."""

    def scenario(pod: Pod) -> dict:
        cid = pod.create("main", ["sleep", "1000"], envs={"FOO": "bar baz"}, working_dir="/tmp")
        obs = {
            "exit3": pod.exec_sync(cid, ["sh", "-c", "echo out; echo err >&2; exit 3"]),
            "env_cwd": pod.exec_sync(cid, ["sh", "-c", 'echo "$FOO"; pwd; id -u']),
        }
        t0 = time.monotonic()
        try:
            obs["timeout"] = pod.exec_sync(cid, ["sleep", "30"], timeout=1)
        except grpc.RpcError as e:
            obs["timeout"] = e.code().name
        obs["timeout_took_under_10s"] = time.monotonic() - t0 < 10
        ps = pod.exec_sync(cid, ["ps", "-o", "args"])[1]
        obs["timed_out_process_gone"] = "sleep 30" not in ps
        error = rpc_error(lambda: pod.exec_sync(cid, ["nosuch"]))
        obs["missing"] = {
            "code": error.get("code"),
            "executable file not found": "executable file not found" in error.get("details", ""),
        }
        obs["still_running"] = pb.ContainerState.Name(pod.status(cid).state)
        return obs

    results = both(cri, "execsync", scenario)
    runc = results["runc"]
    assert runc["exit3"] == (3, "out\n", "err\n")
    assert runc["env_cwd"] == (0, "bar baz\n/tmp\n0\n", "")
    assert runc["timeout_took_under_10s"] and runc["timed_out_process_gone"], runc
    assert runc["missing"]["executable file not found"], runc["missing"]
    assert runc["still_running"] == "CONTAINER_RUNNING"
    same_as_runc(results)


RESIZED = '[ "$(stty size)" = "30 100" ]'
TTY_SCRIPT = (
    f"i=0; while ! {RESIZED} && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done;"
    " echo size=$(stty size); tty; test -t 0 && echo stdin-tty; exit 7\r"
)


def test_exec_streaming(cri: Cri) -> None:
    """Exec through containerd's streaming server (what `kubectl exec` reaches through the
    API server): the URL speaks the websocket channel protocol; stdin, stdout, stderr and the
    exit status, then a tty with a terminal resize."""

    def scenario(pod: Pod) -> dict:
        cid = pod.create("main", ["sleep", "1000"])
        piped = pod.exec_stream(
            cid,
            ["sh", "-c", "read x; echo got:$x; echo err >&2; exit 2"],
            [(0, b"hello\n")],
        )
        obs = {"piped": (piped.exit_code, piped.stdout, piped.stderr)}
        resize = (4, json.dumps({"Width": 100, "Height": 30}).encode())
        tty = pod.exec_stream(cid, ["sh"], [resize, 0.2, (0, TTY_SCRIPT.encode())], tty=True)
        lines = tty.stdout.replace("\r", "").splitlines()
        obs["tty"] = {
            "exit_code": tty.exit_code,
            "size": [line for line in lines if line.startswith("size=")],
            "tty": [line.split("/")[2] for line in lines if line.startswith("/dev/")],
            "stdin-tty": "stdin-tty" in lines,
            "stderr": tty.stderr,
        }
        return obs

    results = both(cri, "stream", scenario)
    runc = results["runc"]
    assert runc["piped"] == (2, "got:hello\n", "err\n")
    assert runc["tty"] == {
        "exit_code": 7,
        "size": ["size=30 100"],
        "tty": ["pts"],
        "stdin-tty": True,
        "stderr": "",
    }
    same_as_runc(results)


# --- logs, stats, resources ----------------------------------------------------------------------
LOGGER = (
    "echo out1; echo err1 >&2; echo out2; head -c 20000 /dev/zero | tr '\\0' x; echo;"
    " printf no-newline"
)


def test_container_logs(cri: Cri) -> None:
    """The CRI log file kubelet reads (`kubectl logs`): stdout and stderr lines, a line longer
    than max_container_log_line_size split into partial lines, a last line with no newline
    (partial too)."""

    def scenario(pod: Pod) -> dict:
        status, lines = pod.run("logger", ["sh", "-c", LOGGER])
        out = [line for line in lines if line[0] == "stdout"]
        return {
            "exited": exited(status),
            "stdout": [(tag, len(text) if len(text) > 99 else text) for _, tag, text in out],
            "stderr": [(tag, text) for s, tag, text in lines if s == "stderr"],
        }

    results = both(cri, "logs", scenario)
    runc = results["runc"]
    assert runc["exited"] == {"exit_code": 0, "reason": "Completed"}
    assert runc["stdout"][:2] == [("F", "out1"), ("F", "out2")], runc["stdout"]
    assert runc["stdout"][-1] == ("P", "no-newline"), runc["stdout"]  # no newline: partial
    assert sum(n for _, n in runc["stdout"][2:-1]) == 20000, runc["stdout"]
    assert runc["stderr"] == [("F", "err1")]
    same_as_runc(results)


def _resources(pod: Pod, cid: str) -> dict:
    return {
        "memory.limit_in_bytes": pod.cgroup_file(cid, "memory", "memory.limit_in_bytes"),
        "cpu.cfs_quota_us": pod.cgroup_file(cid, "cpu", "cpu.cfs_quota_us"),
        "cpu.cfs_period_us": pod.cgroup_file(cid, "cpu", "cpu.cfs_period_us"),
        "cpu.shares": pod.cgroup_file(cid, "cpu", "cpu.shares"),
        "oom_score_adj": read(f"/proc/{pod.pids[cid][0]}/oom_score_adj").strip(),
        "seen_inside": pod.exec_sync(
            cid, ["cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes", "/proc/1/oom_score_adj"]
        ),
    }


def test_stats_and_update_resources(cri: Cri) -> None:
    """The resources kubelet sets for a Burstable container, ContainerStats and
    ListContainerStats (what the kubelet summary API and `kubectl top` show), then
    UpdateContainerResources (in-place resize)."""

    def scenario(pod: Pod) -> dict:
        resources = besteffort(
            cpu_quota=50000, cpu_shares=512, memory_limit_in_bytes=64 * MiB, oom_score_adj=500
        )
        cid = pod.create("main", ["sleep", "1000"], resources=resources)
        obs = {"created": _resources(pod, cid)}
        stats = pod.stats(cid)
        obs["stats"] = {
            "id": stats.attributes.id == cid,
            "name": stats.attributes.metadata.name,
            "cpu_used": stats.cpu.usage_core_nano_seconds.value > 0,
            "memory_working_set": stats.memory.working_set_bytes.value > 0,
            "memory_available_within_limit": 0 < stats.memory.available_bytes.value <= 64 * MiB,
            "writable_layer": bool(stats.writable_layer.fs_id.mountpoint),
        }
        request = pb.ListContainerStatsRequest(
            filter=pb.ContainerStatsFilter(pod_sandbox_id=pod.id)
        )
        listed = cri.call("ListContainerStats", request).stats
        obs["listed"] = [s.attributes.id == cid for s in listed]
        pod.update(
            cid,
            besteffort(
                cpu_quota=20000, cpu_shares=256, memory_limit_in_bytes=96 * MiB, oom_score_adj=500
            ),
        )
        obs["updated"] = _resources(pod, cid)
        obs["after_update"] = pb.ContainerState.Name(pod.status(cid).state)
        return obs

    results = both(cri, "resources", scenario)
    runc = results["runc"]
    limit = str(64 * MiB)
    assert runc["created"] == {
        "memory.limit_in_bytes": limit,
        "cpu.cfs_quota_us": "50000",
        "cpu.cfs_period_us": "100000",
        "cpu.shares": "512",
        "oom_score_adj": "500",
        "seen_inside": (0, f"{limit}\n500\n", ""),
    }
    assert all(runc["stats"].values()) and runc["stats"]["name"] == "main", runc["stats"]
    assert runc["listed"] == [True]
    assert runc["updated"]["memory.limit_in_bytes"] == str(96 * MiB)
    assert runc["updated"]["cpu.cfs_quota_us"] == "20000" and runc["updated"]["cpu.shares"] == "256"
    assert runc["after_update"] == "CONTAINER_RUNNING"
    same_as_runc(results)


def test_stop_and_exit_reasons(cri: Cri) -> None:
    """What ContainerStatus tells kubelet about an end: a TERM handled within the grace
    period, a TERM ignored (SIGKILL after the timeout), an exit code, a completion, an OOM
    kill under a memory limit."""

    def scenario(pod: Pod) -> dict:
        obs = {}
        handles = pod.create(
            "handles", ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"]
        )
        ignores = pod.create("ignores", ["sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"])
        time.sleep(0.3)  # the traps are set
        for cid, timeout in ((handles, 10), (ignores, 1)):
            t0 = time.monotonic()
            pod.stop_container(cid, timeout=timeout)
            took = time.monotonic() - t0
            name = pod.status(cid).metadata.name
            obs[name] = {**exited(pod.status(cid)), "took_timeout": took >= timeout}
        obs["exit3"] = exited(pod.run("exit3", ["sh", "-c", "exit 3"])[0])
        obs["completed"] = exited(pod.run("completed", ["true"])[0])
        oom = besteffort(memory_limit_in_bytes=32 * MiB)
        dd = ["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"]
        obs["oom"] = exited(pod.run("oom", dd, resources=oom)[0])
        return obs

    results = both(cri, "stop", scenario)
    assert results["runc"] == {
        "handles": {"exit_code": 0, "reason": "Completed", "took_timeout": False},
        "ignores": {"exit_code": 137, "reason": "Error", "took_timeout": True},
        "exit3": {"exit_code": 3, "reason": "Error"},
        "completed": {"exit_code": 0, "reason": "Completed"},
        "oom": {"exit_code": 137, "reason": "OOMKilled"},
    }
    same_as_runc(results)


# --- the security context ------------------------------------------------------------------------
IDS = "id; grep -E '^(Uid|Gid|Groups):' /proc/self/status; touch /tmp/f && stat -c %u:%g /tmp/f"


def test_run_as_user_and_group(cri: Cri) -> None:
    """runAsUser, runAsGroup, supplementalGroups (pod securityContext), runAsUser alone, and
    a user name from the image's /etc/passwd; ExecSync runs as the same user."""

    def scenario(pod: Pod) -> dict:
        obs = {}
        for name, security in (
            (
                "ids",
                container_security(
                    run_as_user=1000, run_as_group=3000, supplemental_groups=(4000,)
                ),
            ),
            ("uid_only", container_security(run_as_user=1000)),
            ("username", container_security(run_as_username="user")),
            ("root", container_security()),
        ):
            status, _ = pod.run(name, ["sh", "-c", IDS], security=security)
            cid = pod.containers[name]
            obs[name] = {**exited(status), "output": pod.output(cid)}
        cid = pod.create(
            "exec",
            ["sleep", "1000"],
            security=container_security(run_as_user=1000, run_as_group=3000),
        )
        obs["exec"] = pod.exec_sync(cid, ["id"])
        return obs

    results = both(cri, "users", scenario)
    runc = results["runc"]
    assert runc["ids"]["output"].startswith("uid=1000(user) gid=3000 groups=3000,4000\n"), runc
    assert "1000:3000" in runc["ids"]["output"]
    assert runc["username"]["output"].startswith("uid=1000(user) gid=1000(user)"), runc
    assert runc["root"]["output"].startswith("uid=0(root) gid=0(root)"), runc
    assert runc["exec"][1].startswith("uid=1000(user) gid=3000"), runc["exec"]
    same_as_runc(results)


READONLY = (
    "for f in /x /tmp/x /dev/shm/x /data/x /config/x; do touch $f 2>/dev/null && echo $f:rw"
    " || echo $f:ro; done; echo msg > /dev/termination-log && echo termlog:rw;"
    ' awk \'$2=="/" {split($4, o, ","); print "mount:" o[1]}\' /proc/mounts'
)


def test_read_only_root_filesystem(cri: Cri) -> None:
    """readOnlyRootFilesystem: the rootfs is read-only; /dev/shm, an emptyDir-like volume and
    the termination log stay writable; a read-only volume (a ConfigMap's) is not."""

    def scenario(pod: Pod) -> dict:
        data, config = pod.dir / "volumes" / "data", pod.dir / "volumes" / "config"
        data.mkdir(parents=True)
        config.mkdir(parents=True)
        mounts = (
            pb.Mount(container_path="/data", host_path=str(data)),
            pb.Mount(container_path="/config", host_path=str(config), readonly=True),
        )
        obs = {}
        for name, readonly in (("readonly", True), ("writable", False)):
            security = container_security(readonly_rootfs=readonly)
            status, _ = pod.run(name, ["sh", "-c", READONLY], security=security, mounts=mounts)
            obs[name] = {**exited(status), "output": pod.output(pod.containers[name])}
        obs["volume_files"] = sorted(os.listdir(data))
        return obs

    results = both(cri, "readonly", scenario)
    runc = results["runc"]
    assert runc["readonly"]["output"].split() == [
        "/x:ro", "/tmp/x:ro", "/dev/shm/x:rw", "/data/x:rw", "/config/x:ro", "termlog:rw",
        "mount:ro",
    ]  # fmt: skip
    assert runc["writable"]["output"].split()[:2] == ["/x:rw", "/tmp/x:rw"]
    assert runc["writable"]["output"].split()[-1] == "mount:rw"
    assert runc["volume_files"] == ["x"]
    same_as_runc(results)


CAPS = "grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status"


def test_capabilities(cri: Cri) -> None:
    """capabilities add/drop as kubelet passes them: the defaults, drop ALL, drop ALL + add,
    add + drop, add for a non-root user; ExecSync gets the container's capabilities."""

    def scenario(pod: Pod) -> dict:
        obs = {}
        for name, security in (
            ("default", container_security()),
            ("drop_all", container_security(drop=("ALL",))),
            ("drop_all_add", container_security(drop=("ALL",), add=("NET_BIND_SERVICE",))),
            ("add_drop", container_security(add=("NET_ADMIN", "SYS_TIME"), drop=("CHOWN", "KILL"))),
            ("nonroot_add", container_security(run_as_user=1000, add=("NET_ADMIN",))),
        ):
            status, _ = pod.run(name, ["sh", "-c", CAPS], security=security)
            obs[name] = {**exited(status), **status_lines(pod.output(pod.containers[name]))}
        cid = pod.create("exec", ["sleep", "1000"], security=container_security(drop=("ALL",)))
        obs["exec_drop_all"] = status_lines(pod.exec_sync(cid, ["sh", "-c", CAPS])[1])
        chown = ["sh", "-c", "touch /tmp/f; chown 1 /tmp/f"]
        obs["exec_chown_without_cap"] = pod.exec_sync(cid, chown)[0] != 0
        return obs

    results = both(cri, "caps", scenario)
    runc = results["runc"]
    assert runc["default"]["CapEff"] == "00000000a80425fb", runc["default"]
    for name in ("drop_all", "exec_drop_all"):
        caps = [runc[name][k] for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")]
        assert caps == ["0000000000000000"] * 5, (name, runc[name])
    assert runc["drop_all_add"]["CapBnd"] == f"{1 << 10:016x}"  # CAP_NET_BIND_SERVICE
    assert int(runc["add_drop"]["CapEff"], 16) == (0xA80425FB | 1 << 12 | 1 << 25) & ~(1 | 1 << 5)
    assert runc["nonroot_add"]["CapEff"] == "0000000000000000"
    assert int(runc["nonroot_add"]["CapBnd"], 16) & 1 << 12
    assert runc["exec_chown_without_cap"]
    same_as_runc(results)


def test_no_new_privs(cri: Cri) -> None:
    """allowPrivilegeEscalation: false → no_new_privs, for the process and for ExecSync."""

    def scenario(pod: Pod) -> dict:
        obs = {}
        for name, nnp in (("nnp", True), ("default", False)):
            security = container_security(no_new_privs=nnp, run_as_user=1000)
            cid = pod.create(name, ["sleep", "1000"], security=security)
            obs[name] = {
                "process": status_lines(read(f"/proc/{pod.pids[cid][0]}/status"), ("NoNewPrivs",)),
                "exec": status_lines(
                    pod.exec_sync(cid, ["cat", "/proc/self/status"])[1], ("NoNewPrivs",)
                ),
            }
        return obs

    results = both(cri, "nnp", scenario)
    assert results["runc"] == {
        "nnp": {"process": {"NoNewPrivs": "1"}, "exec": {"NoNewPrivs": "1"}},
        "default": {"process": {"NoNewPrivs": "0"}, "exec": {"NoNewPrivs": "0"}},
    }
    same_as_runc(results)


SECCOMP = "grep -E '^Seccomp' /proc/self/status; unshare -U true 2>&1; echo unshare=$?"


def test_seccomp(cri: Cri) -> None:
    """seccompProfile RuntimeDefault (containerd's default profile; the pod's applies to the
    sandbox) and Unconfined: the filter mode, and a syscall the profile refuses (unshare of a
    user namespace without CAP_SYS_ADMIN)."""

    def scenario(pod: Pod) -> dict:
        obs = {
            "sandbox": status_lines(read(f"/proc/{pod.pids[pod.id][0]}/status"), ("Seccomp",)),
        }
        for name, profile in (("runtime_default", "RuntimeDefault"), ("unconfined", "Unconfined")):
            security = container_security(seccomp=profile)
            status, _ = pod.run(name, ["sh", "-c", SECCOMP], security=security)
            obs[name] = {**exited(status), "output": pod.output(pod.containers[name])}
        return obs

    results = both(cri, "seccomp", scenario, seccomp="RuntimeDefault")
    runc = results["runc"]
    assert runc["sandbox"] == {"Seccomp": "2"}
    assert runc["runtime_default"]["output"].startswith("Seccomp:\t2\nSeccomp_filters:\t1\n")
    assert runc["runtime_default"]["output"].endswith("unshare=1\n"), runc
    assert runc["unconfined"]["output"] == "Seccomp:\t0\nSeccomp_filters:\t0\nunshare=0\n", runc
    same_as_runc(results)


SYSCTLS = {
    "kernel.shm_rmid_forced": "1",
    "net.ipv4.ip_unprivileged_port_start": "80",
    "net.ipv4.ping_group_range": "0 2147483647",
}


def test_namespaced_sysctls(cri: Cri) -> None:
    """Pod sysctls (safe and namespaced ones): set in the sandbox's IPC and network
    namespaces, so every container of the pod sees them; the node's values do not change."""
    paths = {key: "/proc/sys/" + key.replace(".", "/") for key in SYSCTLS}
    host_before = {key: read(path) for key, path in paths.items()}

    def scenario(pod: Pod) -> dict:
        cid = pod.create("main", ["sleep", "1000"])
        values = {}
        for key, path in paths.items():
            code, out, err = pod.exec_sync(cid, ["cat", path])
            values[key] = " ".join(out.split()) if code == 0 else f"error {code}: {err}"
        return values

    results = both(cri, "sysctls", scenario, sysctls=SYSCTLS)
    assert results["runc"] == SYSCTLS
    assert {key: read(path) for key, path in paths.items()} == host_before
    same_as_runc(results)


PRIVILEGED = (
    "grep -E '^(CapPrm|CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status;"
    ' awk \'$2=="/sys" {split($4, o, ","); print "sys:" o[1]}\' /proc/mounts;'
    " echo masked-kcore:$(awk '$2==\"/proc/kcore\"' /proc/mounts | wc -l);"
    " echo dev: $(ls /dev | sort); mount -t tmpfs none /tmp && echo tmpfs-mounted"
)


def test_privileged(cri: Cri) -> None:
    """privileged: true (in a privileged pod): every capability of the bounding set, no
    seccomp, nothing masked, the host's devices, mount allowed."""

    def scenario(pod: Pod) -> dict:
        security = container_security(privileged=True)
        status, _ = pod.run("main", ["sh", "-c", PRIVILEGED], security=security)
        return {**exited(status), "output": pod.output(pod.containers["main"]).splitlines()}

    results = both(cri, "privileged", scenario, privileged=True)
    runc = results["runc"]
    bounding = status_lines(read("/proc/self/status"), ("CapBnd",))["CapBnd"]
    assert runc["exit_code"] == 0, runc
    assert runc["output"][:5] == [
        f"CapPrm:\t{bounding}",
        f"CapEff:\t{bounding}",
        f"CapBnd:\t{bounding}",
        "NoNewPrivs:\t0",
        "Seccomp:\t0",
    ], runc["output"]
    # containerd 1.6 keeps /sys read-only unless the pod is in the host's network namespace
    assert "sys:ro" in runc["output"] and "masked-kcore:0" in runc["output"], runc["output"]
    devices = next(line for line in runc["output"] if line.startswith("dev:")).split()
    assert {"kmsg", "null", "full", "btrfs-control"} <= set(devices), devices  # the host's
    assert runc["output"][-1] == "tmpfs-mounted"
    same_as_runc(results)
