#!/usr/bin/env python3
"""A private containerd with its CRI plugin, where pyoci is a Kubernetes RuntimeClass handler.

    tools/cri-containerd.py up DIR [--pyoci PATH] [--runc PATH]   start it; prints its settings
    tools/cri-containerd.py down DIR                               stop it and remove DIR

Everything lives in DIR (which `up` creates and `down` removes): config.toml, the gRPC socket
DIR/containerd.sock (what kubelet's --container-runtime-endpoint would name), containerd's root
and state, the runtimes' state (--root), the CNI config and IPAM store, the pod logs. Two runtime
handlers, both `io.containerd.runc.v2` shims: `runc` (the default) and `pyoci` (BinaryName =
pyoci), so a RuntimeClass with `handler: pyoci` (CRI: RunPodSandboxRequest.runtime_handler)
selects pyoci.

The host's containerd is never touched, and neither is the host's network:
- containerd runs in a network namespace of its own, `ip netns add pyoci-cri-XXXXXXXX` (entered
  with `nsenter --net`, which is `ip netns exec` without its remount of /sys: that remount
  would detach /sys/fs/cgroup, which containerd and the runtimes need). The CNI bridge, the
  pods' veths and the streaming server (127.0.0.1 of that namespace) are all in there; look
  with `ip netns exec pyoci-cri-XXXXXXXX ip addr`.
- and in a mount namespace of its own (slave of the host's) in which DIR/run is bound over /run
  and DIR/var-lib over /var/lib: containerd 1.6 puts its shims' sockets in /run/containerd/s
  whatever its config says, and libcni caches results in /var/lib/cni. Mounts made in there
  (rootfs overlays, the pods' /dev/shm and network namespaces) never appear in the host's
  mount table, and disappear with the namespace's last process.
- cgroups: pods are expected under the cgroup parent CGROUP_ROOT (printed by `up`, kubelet's
  --cgroup-root; cgroupfs driver), which `down` removes.
- CNI: Debian's containernetworking-plugins (/usr/lib/cni: bridge, host-local, loopback); the
  config in DIR/cni/net.d, host-local's store in DIR/cni/ipam.
- the sandbox ("pause") image and a busybox image are built from bundles/busybox/rootfs (no
  registry is reachable) and imported with `ctr -n k8s.io images import`.

Only the standard library and tests/clients/images.py (the image layer the podman and docker
tests load): tests/clients/test_cri.py imports this file for its fixture.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROOTFS = REPO / "bundles" / "busybox" / "rootfs"
sys.path.insert(0, str(REPO / "tests" / "clients"))
from images import layer_bytes  # noqa: E402  (the same layer podman's and docker's tests load)

CNI_BIN = Path("/usr/lib/cni")
CNI_PLUGINS = ("bridge", "host-local", "loopback")
NAMESPACE = "k8s.io"  # the CRI plugin's containerd namespace
HANDLERS = ("runc", "pyoci")
BUSYBOX_IMAGE = "localhost/pyoci-busybox:latest"  # the same name as tests/clients/images.py
SANDBOX_IMAGE = "localhost/pyoci-pause:latest"
POD_SUBNET = "10.88.0.0/16"  # inside the private network namespace only
TOOLS = ("containerd", "ctr", "containerd-shim-runc-v2", "ip", "nsenter", "unshare")
ARCH = {"x86_64": "amd64", "aarch64": "arm64"}

CONFIG = """\
version = 2
root = "{top}/root"
state = "{top}/state"
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = "{top}/containerd.sock"

[ttrpc]
  address = "{top}/containerd.sock.ttrpc"

[debug]
  level = "info"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{top}/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{sandbox_image}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  disable_apparmor = true
  enable_selinux = false
  netns_mounts_under_state_dir = true
  restrict_oom_score_adj = {restrict_oom}
  systemd_cgroup = false

[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "{snapshotter}"
  default_runtime_name = "runc"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  BinaryName = "{runc}"
  Root = "{top}/runtime/runc"
  SystemdCgroup = false

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.pyoci]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.pyoci.options]
  BinaryName = "{pyoci}"
  Root = "{top}/runtime/pyoci"
  SystemdCgroup = false

[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "{cni_bin}"
  conf_dir = "{top}/cni/net.d"
  max_conf_num = 1
"""


def cni_config(top: Path) -> dict:
    return {
        "cniVersion": "1.0.0",
        "name": "pyoci-cri",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni-pyoci0",
                "isGateway": True,  # the bridge gets .1: the namespace reaches the pods
                "ipMasq": False,  # no iptables
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_SUBNET}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(top / "cni" / "ipam"),
                },
            }
        ],
    }


# --- images --------------------------------------------------------------------------------------
def build_images(dest: Path, rootfs: Path = ROOTFS) -> Path:
    """One docker-archive holding two images on the same busybox layer: BUSYBOX_IMAGE (Cmd sh)
    and SANDBOX_IMAGE, whose entrypoint only waits (what pause does; containerd SIGKILLs it)."""
    if not (rootfs / "bin" / "busybox").exists():
        raise FileNotFoundError(f"{rootfs}: run `make bundles` first")
    layer = layer_bytes(rootfs)
    layer_id = hashlib.sha256(layer).hexdigest()
    machine = os.uname().machine
    files = {f"{layer_id}/layer.tar": layer, f"{layer_id}/VERSION": b"1.0"}
    manifest = []
    for tag, exec_config in (
        (BUSYBOX_IMAGE, {"Cmd": ["sh"]}),
        (SANDBOX_IMAGE, {"Entrypoint": ["/bin/sleep", "inf"]}),
    ):
        config = {
            "architecture": ARCH.get(machine, machine),
            "os": "linux",
            "created": "1970-01-01T00:00:00Z",
            "config": {
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "WorkingDir": "/",
                **exec_config,
            },
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_id}"]},
            "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "pyoci tools"}],
        }
        data = json.dumps(config, sort_keys=True).encode()
        name = hashlib.sha256(data).hexdigest() + ".json"
        files[name] = data
        manifest.append({"Config": name, "RepoTags": [tag], "Layers": [f"{layer_id}/layer.tar"]})
    files["manifest.json"] = json.dumps(manifest).encode()
    with tarfile.open(dest, "w") as tar:
        for arcname, data in files.items():
            info = tarfile.TarInfo(arcname)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return dest


# --- host helpers --------------------------------------------------------------------------------
def _read(path: str | Path) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def _ns(pid: int, kind: str) -> str:
    try:
        return os.readlink(f"/proc/{pid}/ns/{kind}")
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    stat = _read(f"/proc/{pid}/stat")
    return bool(stat) and stat.rpartition(")")[2].split()[0] != "Z"


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def cgroup_dirs(path: str) -> list[Path]:
    """The directories of a cgroup path in every mounted hierarchy (v1 controllers, v2)."""
    base, rel = Path("/sys/fs/cgroup"), path.strip("/")
    found = [base / rel] if (base / rel).is_dir() and (base / "cgroup.procs").exists() else []
    return found + [d for d in sorted(base.glob(f"*/{rel}")) if d.is_dir()]


def cgroup_pids(path: str) -> set[int]:
    return {
        int(pid)
        for top in cgroup_dirs(path)
        for procs in top.rglob("cgroup.procs")
        for pid in _read(procs).split()
    }


def host_mounts_under(top: Path) -> list[str]:
    prefix = str(top)
    points = [line.split()[4] for line in _read("/proc/self/mountinfo").splitlines() if line]
    return [p for p in points if p == prefix or p.startswith(prefix + "/")]


def has_sys_resource() -> bool:
    """Whether we hold CAP_SYS_RESOURCE. Without it (some VMs and sandboxes take it from root)
    no process may lower its oom_score_adj, and the sandbox's -998 (or a Guaranteed pod's -997)
    fails `create` in runc and pyoci alike: then restrict_oom_score_adj makes containerd clamp
    the values to its own, as it does for rootless."""
    for line in _read("/proc/self/status").splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> 24 & 1)
    return False


def _kill(pids: set[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    while any(map(_alive, pids)) and time.monotonic() < deadline:
        time.sleep(0.05)


def default_pyoci() -> str:
    """$PYOCI, the repository's venv launcher, or pyoci on PATH."""
    venv = REPO / ".venv" / "bin" / "pyoci"
    return os.environ.get("PYOCI") or (str(venv) if venv.exists() else shutil.which("pyoci") or "")


# --- the daemon ----------------------------------------------------------------------------------
class CriContainerd:
    """The private containerd of DIR. `start()` sets it all up, `stop()` tears it all down; the
    settings are kept in DIR/env.json so that `down` (another process) finds them."""

    def __init__(self, top: Path, pyoci: str | None = None, runc: str | None = None) -> None:
        self.top = Path(top).absolute()
        self.env_file = self.top / "env.json"
        saved = json.loads(self.env_file.read_text()) if self.env_file.exists() else {}
        suffix = saved.get("suffix") or uuid.uuid4().hex[:8]
        self.suffix = suffix
        self.netns = saved.get("netns", f"pyoci-cri-{suffix}")
        self.cgroup_root = saved.get("cgroup_root", f"/pyoci-cri-{suffix}")
        self.pid = saved.get("pid", 0)
        self.mntns = saved.get("mntns", "")
        self.netns_id = saved.get("netns_id", "")
        self.runtimes = saved.get("runtimes") or {
            "runc": runc or shutil.which("runc") or "/usr/sbin/runc",
            "pyoci": pyoci or default_pyoci(),
        }
        self.address = str(self.top / "containerd.sock")
        self.config = self.top / "config.toml"
        self.log = self.top / "containerd.log"
        self.logs = self.top / "logs"  # pods' log directories go here
        self.proc: subprocess.Popen | None = None

    # paths the tests look at
    def runtime_root(self, handler: str) -> Path:
        """What the shim passes as --root: Root/NAMESPACE."""
        return self.top / "runtime" / handler / NAMESPACE

    @property
    def netns_path(self) -> str:
        return f"/run/netns/{self.netns}"

    def save(self) -> None:
        self.env_file.write_text(
            json.dumps(
                {
                    "suffix": self.suffix,
                    "address": self.address,
                    "netns": self.netns,
                    "netns_id": self.netns_id,
                    "cgroup_root": self.cgroup_root,
                    "pid": self.pid,
                    "mntns": self.mntns,
                    "runtimes": self.runtimes,
                    "sandbox_image": SANDBOX_IMAGE,
                    "image": BUSYBOX_IMAGE,
                    "log_dir": str(self.logs),
                },
                indent=2,
            )
        )

    @staticmethod
    def missing() -> str | None:
        """Why this cannot run here, or None."""
        if os.geteuid() != 0:
            return "the CRI setup starts containerd and real pods: run it as root"
        for tool in TOOLS:
            if shutil.which(tool) is None:
                return f"{tool} is not installed (make system)"
        for plugin in CNI_PLUGINS:
            if not os.access(CNI_BIN / plugin, os.X_OK):
                return f"{CNI_BIN / plugin} missing: apt-get install containernetworking-plugins"
        if not (ROOTFS / "bin" / "busybox").exists():
            return f"busybox rootfs missing at {ROOTFS}: run `make bundles`"
        return None

    def ctr(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        argv = ["ctr", "--address", self.address, "--namespace", NAMESPACE, *args]
        return subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout
        )

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(_read(self.log).splitlines()[-lines:]) or "(no containerd log)"

    def start(self) -> None:
        for sub in ("root", "state", "opt", "run", "var-lib", "cni/net.d", "cni/ipam", "logs"):
            (self.top / sub).mkdir(parents=True, exist_ok=True)
        for handler in HANDLERS:
            (self.top / "runtime" / handler).mkdir(parents=True, exist_ok=True)
        with open("/proc/filesystems") as f:
            overlay = any(line.split()[-1] == "overlay" for line in f if line.strip())
        snapshotter = "overlayfs" if overlay else "native"
        self.config.write_text(
            CONFIG.format(
                top=self.top,
                sandbox_image=SANDBOX_IMAGE,
                snapshotter=snapshotter,
                runc=self.runtimes["runc"],
                pyoci=self.runtimes["pyoci"],
                cni_bin=CNI_BIN,
                restrict_oom=str(not has_sys_resource()).lower(),
            )
        )
        conf = self.top / "cni" / "net.d" / "10-pyoci-cri.conflist"
        conf.write_text(json.dumps(cni_config(self.top), indent=2))
        self.save()  # from here on, `down` can clean up whatever happens next
        subprocess.run(["ip", "netns", "add", self.netns], check=True, capture_output=True)
        subprocess.run(
            ["ip", "-n", self.netns, "link", "set", "lo", "up"], check=True, capture_output=True
        )
        # nsenter --net first (the netns file is under /run), then a slave mount namespace in
        # which DIR/run and DIR/var-lib hide the host's /run and /var/lib
        setup = (
            'mount --bind "$1/run" /run && mount --bind "$1/var-lib" /var/lib && shift && exec "$@"'
        )
        argv = [
            "nsenter",
            f"--net={self.netns_path}",
            "unshare",
            "--mount",
            "--propagation",
            "slave",
            "sh",
            "-c",
            setup,
            "sh",
            str(self.top),
            "containerd",
            "--config",
            str(self.config),
        ]
        env = dict(os.environ, CONTAINERD_SNAPSHOTTER=snapshotter)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
            )
        self.pid = self.proc.pid  # nsenter, unshare and sh all exec: this becomes containerd
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"containerd exited {self.proc.returncode}:\n{self.log_tail()}")
            if os.path.exists(self.address) and self.ctr("version").returncode == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"containerd did not come up:\n{self.log_tail()}")
            time.sleep(0.1)
        self.mntns, self.netns_id = _ns(self.pid, "mnt"), _ns(self.pid, "net")
        self.save()
        plugins = self.ctr("plugins", "ls").stdout
        cri = [line for line in plugins.splitlines() if "io.containerd.grpc.v1" in line]
        if not any(" cri " in f" {line} " and line.split()[-1] == "ok" for line in cri):
            raise RuntimeError(f"the CRI plugin is not running:\n{plugins}\n{self.log_tail()}")
        archive = build_images(self.top / "images.tar")
        result = self.ctr("images", "import", "--snapshotter", snapshotter, str(archive))
        if result.returncode != 0:
            raise RuntimeError(f"ctr images import: {result.stderr}")
        listed = self.ctr("images", "ls", "-q").stdout.split()
        if not {BUSYBOX_IMAGE, SANDBOX_IMAGE} <= set(listed):
            raise RuntimeError(f"images not imported: {listed}")

    # everything of ours, found from the host
    def processes(self) -> set[int]:
        """containerd, its shims and whatever they started: every process in our mount or
        network namespace, in our cgroup root, or naming our socket or runtime roots."""
        me = os.getpid()
        marks = (self.address.encode(), str(self.top / "runtime").encode())
        found = cgroup_pids(self.cgroup_root)
        for pid in _pids():
            if pid == me:
                continue
            if (self.mntns and _ns(pid, "mnt") == self.mntns) or (
                self.netns_id and _ns(pid, "net") == self.netns_id
            ):
                found.add(pid)
            else:
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        cmdline = f.read()
                except OSError:
                    continue
                if any(mark in cmdline for mark in marks):
                    found.add(pid)
        return {pid for pid in found if _alive(pid)}

    def stop(self) -> list[str]:
        """Stop everything and remove DIR; return what had to be killed or could not go."""
        notes = []
        if self.pid and _alive(self.pid) and _ns(self.pid, "mnt") == self.mntns:
            os.kill(self.pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while _alive(self.pid) and time.monotonic() < deadline:
                time.sleep(0.05)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # the shims and their containers outlive containerd; so may a runtime's own processes
        for _ in range(3):
            strays = self.processes()
            if not strays:
                break
            notes.append(f"killed {len(strays)} leftover processes")
            _kill(strays)
        subprocess.run(["ip", "netns", "del", self.netns], capture_output=True, check=False)
        for top in cgroup_dirs(self.cgroup_root):
            for sub in sorted(top.rglob("*"), key=lambda p: -len(p.parts)):
                if sub.is_dir():
                    try:
                        sub.rmdir()
                    except OSError:
                        notes.append(f"cgroup {sub} not removable")
            try:
                top.rmdir()
            except OSError:
                notes.append(f"cgroup {top} not removable")
        if host_mounts_under(self.top):  # never rmtree through a mount
            notes.append(f"host mounts under {self.top}: {host_mounts_under(self.top)}")
        else:
            shutil.rmtree(self.top, ignore_errors=True)
        return notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start a private containerd with the CRI plugin in DIR")
    up.add_argument("dir", type=Path)
    up.add_argument("--pyoci", help="the pyoci binary (default: $PYOCI, else .venv/bin/pyoci)")
    up.add_argument("--runc", help="the runc binary (default: runc on PATH)")
    down = sub.add_parser("down", help="stop it and remove DIR")
    down.add_argument("dir", type=Path)
    args = parser.parse_args(argv)
    if args.command == "up":
        why = CriContainerd.missing()
        if why:
            print(f"cri-containerd: {why}", file=sys.stderr)
            return 1
        pyoci = args.pyoci or default_pyoci()
        if not pyoci or not os.access(pyoci, os.X_OK):
            print(
                f"cri-containerd: no pyoci binary ({pyoci!r}): make venv, or --pyoci",
                file=sys.stderr,
            )
            return 1
        if (args.dir / "env.json").exists():
            print(f"cri-containerd: {args.dir} is in use (run `down` first)", file=sys.stderr)
            return 1
        args.dir.mkdir(parents=True, exist_ok=True)
        daemon = CriContainerd(args.dir, pyoci=os.path.abspath(pyoci), runc=args.runc)
        try:
            daemon.start()
        except Exception as e:
            print(f"cri-containerd: {e}", file=sys.stderr)
            daemon.stop()
            return 1
        print(f"CONTAINER_RUNTIME_ENDPOINT=unix://{daemon.address}")
        print(f"CRI_NETNS={daemon.netns}")
        print(f"CRI_CGROUP_ROOT={daemon.cgroup_root}")
        print(f"CRI_LOG_DIR={daemon.logs}")
        print(f"CRI_SANDBOX_IMAGE={SANDBOX_IMAGE}")
        print(f"CRI_IMAGE={BUSYBOX_IMAGE}")
        print(f"CONTAINERD_PID={daemon.pid}")
        return 0
    if not (args.dir / "env.json").exists():
        print(f"cri-containerd: no private containerd in {args.dir}", file=sys.stderr)
        return 1
    for note in CriContainerd(args.dir).stop():
        print(f"cri-containerd: {note}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
