"""Speaking the CRI the way kubelet does: gRPC (runtime.v1, the `container-runtime-interface-api`
stubs) on the socket of the private containerd of tools/cri-containerd.py, and the Kubernetes
websocket channel protocol (v4.channel.k8s.io) on the URLs of its streaming server.

A `Pod` is one RunPodSandbox with a runtime handler (`runc` or `pyoci`), the containers created
in it, and, on exit, StopPodSandbox + RemovePodSandbox followed by a search for anything left:
runtime state, processes, cgroups, mounts.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import os
import socket
import sys
import threading
import time
import uuid
from pathlib import Path
from types import ModuleType
from urllib.parse import urlparse

import grpc
import websocket
from cri_api.v1 import api_pb2 as pb
from cri_api.v1 import api_pb2_grpc as rpc

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "tools" / "cri-containerd.py"
CALL_TIMEOUT = 60  # every gRPC call
CLONE_NEWNET = 0x40000000

# What kubelet sends for a container whose procMount is Default (pkg/securitycontext/util.go).
KUBELET_MASKED_PATHS = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
]
KUBELET_READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def load_tool() -> ModuleType:
    """tools/cri-containerd.py as a module (its name has a dash)."""
    name = "cri_containerd_tool"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, TOOL)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# --- host helpers --------------------------------------------------------------------------------
def read(path: str | Path) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    stat = read(f"/proc/{pid}/stat")
    return bool(stat) and stat.rpartition(")")[2].split()[0] != "Z"


def identity(pid: int) -> tuple[int, str]:
    """(pid, start time): the same process, not a later one that got its pid."""
    fields = read(f"/proc/{pid}/stat").rpartition(")")[2].split()
    return pid, fields[19] if len(fields) > 19 else ""


def wait_for(what: str, predicate, timeout: float = 20, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


_libc = ctypes.CDLL(None, use_errno=True)


def connect_in_netns(netns: str, host: str, port: int, timeout: float = 10) -> socket.socket:
    """A TCP connection made from inside the network namespace `netns` (a path): a thread
    joins it (setns affects the calling thread only) and makes the socket, which then works
    from any thread. The streaming server listens on 127.0.0.1 of containerd's namespace."""
    box: dict = {}

    def run() -> None:
        try:
            fd = os.open(netns, os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns({netns}): {os.strerror(err)}")
            finally:
                os.close(fd)
            box["sock"] = socket.create_connection((host, port), timeout=timeout)
        except Exception as e:  # handed to the caller
            box["error"] = e

    thread = threading.Thread(target=run, name="netns-connect")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["sock"]


def http_get_in_netns(netns: str, host: str, port: int, path: str = "/") -> str:
    sock = connect_in_netns(netns, host, port)
    with sock:
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


# --- the Kubernetes websocket channel protocol ---------------------------------------------------
STDIN, STDOUT, STDERR, ERROR, RESIZE = range(5)


class StreamResult:
    def __init__(self, channels: dict[int, bytes]) -> None:
        self.stdout = channels.get(STDOUT, b"").decode(errors="replace")
        self.stderr = channels.get(STDERR, b"").decode(errors="replace")
        self.status = json.loads(channels[ERROR]) if channels.get(ERROR) else {}

    @property
    def exit_code(self) -> int | None:
        """0 for "Success"; the ExitCode cause of a NonZeroExitCode failure; else None."""
        if self.status.get("status") == "Success":
            return 0
        for cause in self.status.get("details", {}).get("causes", []):
            if cause.get("reason") == "ExitCode":
                return int(cause["message"])
        return None


def stream(netns: str, url: str, send: list, timeout: float = 30) -> StreamResult:
    """Open `url` (from Exec/Attach) as kubectl does: a websocket speaking v4.channel.k8s.io,
    every binary frame prefixed by its channel. `send` is a list of (channel, bytes) frames, or
    a number of seconds to wait. Reads until the server closes (after the error channel's
    metav1.Status)."""
    parsed = urlparse(url)
    sock = connect_in_netns(netns, parsed.hostname or "127.0.0.1", parsed.port or 80)
    ws = websocket.WebSocket()
    ws.connect(
        url.replace("http", "ws", 1), subprotocols=["v4.channel.k8s.io"], socket=sock, timeout=5
    )
    assert ws.getsubprotocol() == "v4.channel.k8s.io", ws.getsubprotocol()
    channels: dict[int, bytes] = {}
    try:
        for item in send:
            if isinstance(item, int | float):
                time.sleep(item)
            else:
                channel, data = item
                ws.send_binary(bytes([channel]) + data)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                opcode, data = ws.recv_data()
            except websocket.WebSocketTimeoutException:
                continue
            except websocket.WebSocketConnectionClosedException:
                break
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                break
            if data:  # an empty frame only opens a channel
                channels[data[0]] = channels.get(data[0], b"") + data[1:]
        else:
            raise AssertionError(f"the stream of {url} did not end in {timeout}s: {channels}")
    finally:
        ws.close()
    return StreamResult(channels)


# --- security contexts as kubelet sends them -----------------------------------------------------
def seccomp_profile(kind: str | None) -> pb.SecurityProfile:
    """kubelet sends Unconfined when the pod says nothing (SeccompDefault off)."""
    kinds = {
        None: pb.SecurityProfile.Unconfined,
        "Unconfined": pb.SecurityProfile.Unconfined,
        "RuntimeDefault": pb.SecurityProfile.RuntimeDefault,
    }
    return pb.SecurityProfile(profile_type=kinds[kind])


def container_security(
    *,
    run_as_user: int | None = None,
    run_as_group: int | None = None,
    run_as_username: str = "",
    supplemental_groups: tuple[int, ...] = (),
    readonly_rootfs: bool = False,
    add: tuple[str, ...] = (),
    drop: tuple[str, ...] = (),
    privileged: bool = False,
    seccomp: str | None = None,
    no_new_privs: bool = False,
) -> pb.LinuxContainerSecurityContext:
    ctx = pb.LinuxContainerSecurityContext(
        capabilities=pb.Capability(add_capabilities=add, drop_capabilities=drop),
        privileged=privileged,
        namespace_options=pb.NamespaceOption(
            network=pb.POD, pid=pb.CONTAINER, ipc=pb.POD
        ),  # what kubelet sends without hostNetwork/hostPID/hostIPC/shareProcessNamespace
        run_as_username=run_as_username,
        readonly_rootfs=readonly_rootfs,
        supplemental_groups=supplemental_groups,
        no_new_privs=no_new_privs,
        seccomp=seccomp_profile(seccomp),
    )
    if run_as_user is not None:
        ctx.run_as_user.value = run_as_user
    if run_as_group is not None:
        ctx.run_as_group.value = run_as_group
    if not privileged:
        ctx.masked_paths.extend(KUBELET_MASKED_PATHS)
        ctx.readonly_paths.extend(KUBELET_READONLY_PATHS)
    return ctx


def besteffort(**overrides: int) -> pb.LinuxContainerResources:
    """kubelet's resources for a container without requests or limits."""
    values = {"cpu_period": 100000, "cpu_shares": 2, "oom_score_adj": 1000, **overrides}
    return pb.LinuxContainerResources(**values)


# --- the CRI client ------------------------------------------------------------------------------
class Cri:
    """The private containerd (tools/cri-containerd.py's CriContainerd) and its CRI services."""

    def __init__(self, daemon) -> None:
        self.daemon = daemon
        self.channel = grpc.insecure_channel(f"unix://{daemon.address}")
        self.runtime = rpc.RuntimeServiceStub(self.channel)
        self.images = rpc.ImageServiceStub(self.channel)
        self.image = load_tool().BUSYBOX_IMAGE

    def call(self, method: str, request, timeout: float = CALL_TIMEOUT):
        return getattr(self.runtime, method)(request, timeout=timeout)

    def close(self) -> None:
        self.channel.close()

    def wait_ready(self) -> None:
        """kubelet waits for Status's RuntimeReady and NetworkReady, and for the images."""

        def ready() -> bool:
            try:
                status = self.call("Status", pb.StatusRequest(), timeout=5).status
                conditions = {c.type: c.status for c in status.conditions}
                if not (conditions.get("RuntimeReady") and conditions.get("NetworkReady")):
                    return False
                tool = load_tool()
                for image in (tool.SANDBOX_IMAGE, tool.BUSYBOX_IMAGE):
                    request = pb.ImageStatusRequest(image=pb.ImageSpec(image=image))
                    if not self.images.ImageStatus(request, timeout=5).image.id:
                        return False
                return True
            except grpc.RpcError:
                return False

        wait_for(f"CRI ready\n{self.daemon.log_tail()}", ready, timeout=30, interval=0.1)

    def pod(self, handler: str, name: str, **options) -> Pod:
        """A pod `name` (the same name for every handler: it is also the hostname)."""
        return Pod(self, handler, name, **options)

    def pods(self) -> list:
        return list(self.call("ListPodSandbox", pb.ListPodSandboxRequest()).items)

    def remove_all(self) -> None:
        for pod in self.pods():
            for method, request in (
                ("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=pod.id)),
                ("RemovePodSandbox", pb.RemovePodSandboxRequest(pod_sandbox_id=pod.id)),
            ):
                try:
                    self.call(method, request)
                except grpc.RpcError:
                    pass

    def log_size(self) -> int:
        try:
            return self.daemon.log.stat().st_size
        except OSError:
            return 0

    def log_errors(self, since: int = 0) -> str:
        """containerd's warning and error lines logged after offset `since` (they carry the
        runtime's error messages, as read from its --log file)."""
        try:
            with open(self.daemon.log, "rb") as f:
                f.seek(since)
                text = f.read().decode(errors="replace")
        except OSError:
            return ""
        wanted = ("level=error", "level=warning")
        return "\n".join(line for line in text.splitlines() if any(w in line for w in wanted))

    def mounts(self) -> list[str]:
        """Mount points in containerd's mount namespace (the host never sees them) under its
        directory, where containerd mounts everything of a pod: rootfs, /dev/shm, network
        namespace. The namespace is a slave of the host's: other host mounts appear too."""
        lines = read(f"/proc/{self.daemon.pid}/mountinfo").splitlines()
        top = str(self.daemon.top) + "/"
        return [p for p in (line.split()[4] for line in lines if line) if p.startswith(top)]


class Pod:
    """One pod sandbox run with a runtime handler; a context manager that removes it and
    fails if anything of it stays behind."""

    def __init__(
        self,
        cri: Cri,
        handler: str,
        name: str,
        *,
        sysctls: dict[str, str] | None = None,
        privileged: bool = False,
        seccomp: str | None = None,
        run_as_user: int | None = None,
        share_pid: bool = False,
    ) -> None:
        self.cri = cri
        self.pid_mode = pb.POD if share_pid else pb.CONTAINER  # shareProcessNamespace
        self.handler = handler
        self.name = name
        self.uid = str(uuid.uuid4())
        daemon = cri.daemon
        self.cgroup_parent = f"{daemon.cgroup_root}/pod{self.uid}"  # kubelet: cgroupfs driver
        self.dir = daemon.top / "pods" / self.uid  # kubelet's /var/lib/kubelet/pods/UID
        self.dir.mkdir(parents=True)
        self.log_directory = daemon.logs / f"default_{name}_{self.uid}"  # /var/log/pods/...
        security = pb.LinuxSandboxSecurityContext(
            namespace_options=pb.NamespaceOption(network=pb.POD, pid=self.pid_mode, ipc=pb.POD),
            privileged=privileged,
            seccomp=seccomp_profile(seccomp),
        )
        if run_as_user is not None:
            security.run_as_user.value = run_as_user
        self.config = pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name=name, uid=self.uid, namespace="default"),
            hostname=name,
            log_directory=str(self.log_directory),
            dns_config=pb.DNSConfig(
                servers=["10.96.0.10"],
                searches=["default.svc.cluster.local", "svc.cluster.local"],
                options=["ndots:5"],
            ),
            labels={"io.kubernetes.pod.name": name, "io.kubernetes.pod.uid": self.uid},
            annotations={"kubernetes.io/config.source": "api"},
            linux=pb.LinuxPodSandboxConfig(
                cgroup_parent=self.cgroup_parent,
                security_context=security,
                sysctls=sysctls or {},
            ),
        )
        self.id = ""
        self.containers: dict[str, str] = {}  # name → id
        self.pids: dict[str, tuple[int, str]] = {}  # id → identity of the pid containerd gave
        self.cgroups: dict[str, str] = {}  # id → cgroupsPath
        self.netns = ""
        self.mounts_before: set[str] = set()

    # --- pod ---------------------------------------------------------------------------------
    def __enter__(self) -> Pod:
        self.mounts_before = set(self.cri.mounts())
        request = pb.RunPodSandboxRequest(config=self.config, runtime_handler=self.handler)
        self.id = self.cri.call("RunPodSandbox", request).pod_sandbox_id
        info = self.sandbox_info()
        self.pids[self.id] = identity(info["pid"])
        self.cgroups[self.id] = info["runtimeSpec"]["linux"]["cgroupsPath"]
        spaces = info["runtimeSpec"]["linux"]["namespaces"]
        self.netns = next(ns.get("path", "") for ns in spaces if ns["type"] == "network")
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        problems = self.remove()
        if problems and exc is None:
            raise AssertionError(
                f"[{self.handler}] left behind by pod {self.name}:\n  " + "\n  ".join(problems)
            )
        if problems:
            print(f"[{self.handler}] also left behind:\n  " + "\n  ".join(problems))
        return False

    def sandbox_status(self, verbose: bool = False):
        request = pb.PodSandboxStatusRequest(pod_sandbox_id=self.id, verbose=verbose)
        return self.cri.call("PodSandboxStatus", request)

    def sandbox_info(self) -> dict:
        return json.loads(self.sandbox_status(verbose=True).info["info"])

    @property
    def ip(self) -> str:
        return self.sandbox_status().status.network.ip

    def stop(self) -> None:
        self.cri.call("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=self.id))

    def remove(self) -> list[str]:
        """StopPodSandbox + RemovePodSandbox (as kubelet: they stop and remove the containers),
        then what is left of the pod; kubelet's own part (the pod cgroup) is removed too."""
        problems = []
        for method, request in (
            ("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=self.id)),
            ("RemovePodSandbox", pb.RemovePodSandboxRequest(pod_sandbox_id=self.id)),
        ):
            try:
                self.cri.call(method, request)
            except grpc.RpcError as e:
                problems.append(f"{method}: {e.code()}: {e.details()}")
        problems += self.leftovers()
        tool = load_tool()
        for top in tool.cgroup_dirs(self.cgroup_parent):  # kubelet removes the pod's cgroup
            try:
                top.rmdir()
            except OSError as e:
                problems.append(f"pod cgroup {top} not removable: {e}")
        return problems

    def leftovers(self) -> list[str]:
        tool = load_tool()
        daemon = self.cri.daemon
        ids = [self.id, *self.containers.values()]
        found = []
        if any(p.id == self.id for p in self.cri.pods()):
            found.append(f"sandbox {self.id} still listed")
        root = daemon.runtime_root(self.handler)
        for cid in ids:
            if (root / cid).exists():
                found.append(f"runtime state {root / cid}")
        for pid, start in self.pids.values():
            if alive(pid) and identity(pid) == (pid, start):
                found.append(f"process {pid} ({cmdline(pid)})")
        for pid in tool.cgroup_pids(self.cgroup_parent):
            found.append(f"process {pid} in the pod's cgroup ({cmdline(pid)})")
        for pid in map(int, filter(str.isdigit, os.listdir("/proc"))):
            text = cmdline(pid)
            if (str(root) in text or f"-id {self.id}" in text) and alive(pid):
                found.append(f"process {pid} ({text})")
        for top in tool.cgroup_dirs(self.cgroup_parent):
            found += [f"cgroup {d}" for d in top.iterdir() if d.is_dir()]
        for cgroup in self.cgroups.values():
            found += [f"cgroup {d}" for d in tool.cgroup_dirs(cgroup)]
        mounts = set(self.cri.mounts()) - self.mounts_before
        found += [f"mount {m} (containerd's mount namespace)" for m in sorted(mounts)]
        found += [f"host mount {m}" for m in tool.host_mounts_under(daemon.top)]
        if self.netns and os.path.exists(self.netns):
            found.append(f"network namespace {self.netns}")
        return sorted(set(found))

    # --- containers --------------------------------------------------------------------------
    def create(
        self,
        name: str,
        command: list[str],
        *,
        security: pb.LinuxContainerSecurityContext | None = None,
        resources: pb.LinuxContainerResources | None = None,
        mounts: tuple[pb.Mount, ...] = (),
        envs: dict[str, str] | None = None,
        working_dir: str = "",
        tty: bool = False,
        stdin: bool = False,
        start: bool = True,
    ) -> str:
        """CreateContainer (+ StartContainer): the config kubelet builds, with its
        termination-log mount; returns the container id."""
        termination_log = self.dir / "containers" / name / "termination-log"
        termination_log.parent.mkdir(parents=True, exist_ok=True)
        termination_log.touch()
        config = pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name=name, attempt=0),
            image=pb.ImageSpec(image=self.cri.image),
            command=command,
            working_dir=working_dir,
            envs=[pb.KeyValue(key=k, value=v) for k, v in (envs or {}).items()],
            mounts=[
                pb.Mount(container_path="/dev/termination-log", host_path=str(termination_log)),
                *mounts,
            ],
            labels={"io.kubernetes.container.name": name, "io.kubernetes.pod.uid": self.uid},
            annotations={"io.kubernetes.container.terminationMessagePath": "/dev/termination-log"},
            log_path=f"{name}/0.log",
            stdin=stdin,
            tty=tty,
            linux=pb.LinuxContainerConfig(
                resources=resources or besteffort(),
                security_context=security or container_security(),
            ),
        )
        config.linux.security_context.namespace_options.pid = self.pid_mode
        request = pb.CreateContainerRequest(
            pod_sandbox_id=self.id, config=config, sandbox_config=self.config
        )
        cid = self.cri.call("CreateContainer", request).container_id
        self.containers[name] = cid
        info = self.info(cid)
        self.cgroups[cid] = info["runtimeSpec"]["linux"]["cgroupsPath"]
        if start:
            self.start(cid)
        return cid

    def start(self, cid: str) -> None:
        self.cri.call("StartContainer", pb.StartContainerRequest(container_id=cid))
        self.pids[cid] = identity(self.info(cid)["pid"])

    def run(self, name: str, command: list[str], **options) -> tuple[object, list]:
        """A container that runs to its end: (its final ContainerStatus, its log lines)."""
        cid = self.create(name, command, **options)
        status = self.wait_exited(cid)
        return status, self.logs(cid)

    def status(self, cid: str):
        request = pb.ContainerStatusRequest(container_id=cid)
        return self.cri.call("ContainerStatus", request).status

    def info(self, cid: str) -> dict:
        request = pb.ContainerStatusRequest(container_id=cid, verbose=True)
        return json.loads(self.cri.call("ContainerStatus", request).info["info"])

    def wait_exited(self, cid: str, timeout: float = 20):
        return wait_for(
            f"container {cid} exited",
            lambda: (s := self.status(cid)).state == pb.CONTAINER_EXITED and s,
            timeout=timeout,
        )

    def logs(self, cid: str) -> list[tuple[str, str, str]]:
        """The CRI log file as kubelet reads it: (stream, P|F, text) per line."""
        path = self.status(cid).log_path
        lines = []
        for line in read(path).splitlines():
            _, stream_, tag, text = (line.split(" ", 3) + [""])[:4]
            lines.append((stream_, tag, text))
        return lines

    def output(self, cid: str, stream_: str = "stdout") -> str:
        return "".join(t + ("\n" if tag == "F" else "") for s, tag, t in self.logs(cid)
                       if s == stream_)  # fmt: skip

    def exec_sync(self, cid: str, cmd: list[str], timeout: int = 10) -> tuple[int, str, str]:
        request = pb.ExecSyncRequest(container_id=cid, cmd=cmd, timeout=timeout)
        response = self.cri.call("ExecSync", request, timeout=timeout + CALL_TIMEOUT)
        return response.exit_code, response.stdout.decode(), response.stderr.decode()

    def exec_stream(
        self, cid: str, cmd: list[str], send: list, *, tty: bool = False, stdin: bool = True
    ) -> StreamResult:
        request = pb.ExecRequest(
            container_id=cid, cmd=cmd, tty=tty, stdin=stdin, stdout=True, stderr=not tty
        )
        url = self.cri.call("Exec", request).url
        return stream(self.cri.daemon.netns_path, url, send)

    def stats(self, cid: str):
        request = pb.ContainerStatsRequest(container_id=cid)
        return self.cri.call("ContainerStats", request).stats

    def update(self, cid: str, resources: pb.LinuxContainerResources) -> None:
        request = pb.UpdateContainerResourcesRequest(container_id=cid, linux=resources)
        self.cri.call("UpdateContainerResources", request)

    def stop_container(self, cid: str, timeout: int) -> None:
        request = pb.StopContainerRequest(container_id=cid, timeout=timeout)
        self.cri.call("StopContainer", request, timeout=timeout + CALL_TIMEOUT)

    def remove_container(self, cid: str) -> None:
        self.cri.call("RemoveContainer", pb.RemoveContainerRequest(container_id=cid))

    def cgroup_file(self, cid: str, controller: str, name: str) -> str:
        path = Path("/sys/fs/cgroup") / controller / self.cgroups[cid].strip("/") / name
        return read(path).strip()
