"""Networking beyond loopback: `linux.netDevices` (runtime-spec 1.3.0) and opt-in bridges.

Everything here runs in the parent (`pyoci create`/`run`, and `delete`); the container's init
never imports it. The lifecycle calls it at three points:

- `plan_network(spec, net, root, id)`, before the fork: check the config and `--net`, with
  ioctls only (does each device exist, is the bridge a bridge, what address does it have), and
  lease the container's address in the store (pyoci.netstore). The default config never gets
  here: pyoci.creator imports this module only when `--net`, `linux.netDevices` or an
  `org.pyoci.net.*` annotation is there.
- `NetPlan.attach(init_pid)`, when the init stops at its HOOKS sync point (its namespaces
  exist; it has not pivoted, written sysctls or run a hook): through the init's
  `/proc/PID/ns/net` the parent moves the netDevices in, creates the bridge if missing and a
  veth pair whose container end is born in the container's namespace as `eth0`, and sets
  addresses, MTU, the default route, and links up.
- `release(root, id, record)`, by `delete` (and by a failed `create`): remove the host end of
  the veth, return the address, and with the network's last container undo what pyoci did to
  the bridge (remove the bridge it created, or the address it added) unless another interface
  is still attached to it. netDevices are never moved back (the spec: the kernel does it when
  the namespace dies); only a failed `create` moves them back itself.

pyroute2 costs ~150-220 ms to import: only `attach` and `release` import it, and `prepare()`
lets the parent pay it while the children set the container up. A netlink socket in another
namespace is made by setns() into it and back (the parent is single-threaded), not by
pyroute2's NetNS, which forks a helper process.

"The runtime's network namespace" is the one `pyoci` runs in: under `ip netns exec NS`, the
bridge and the veths are made in NS.
"""

from __future__ import annotations

import errno
import os

from pyoci import faults
from pyoci.errors import PyociError

ANNOTATION_PREFIX = "org.pyoci.net."
BRIDGE_KEY = "org.pyoci.net.bridge"
ADDRESS_KEY = "org.pyoci.net.address"
GATEWAY_KEY = "org.pyoci.net.gateway"
MTU_KEY = "org.pyoci.net.mtu"
SUBNET_KEY = "org.pyoci.net.subnet"
KNOWN_KEYS = (BRIDGE_KEY, ADDRESS_KEY, GATEWAY_KEY, MTU_KEY, SUBNET_KEY)
ANNOTATION_HELP = {
    BRIDGE_KEY: "bridge networking on this bridge (created if missing; empty: pyoci0)",
    ADDRESS_KEY: "the container's IPv4 address (A.B.C.D or A.B.C.D/N); default: a free one",
    GATEWAY_KEY: "the container's default route (default: the bridge's address)",
    MTU_KEY: "MTU of the veth pair (default: the bridge's)",
    SUBNET_KEY: "subnet of a bridge pyoci configures (default 10.89.0.0/24 for pyoci0)",
}
DEFAULT_BRIDGE = "pyoci0"
DEFAULT_SUBNET = "10.89.0.0/24"
SUBNET_POOL = "10.89.0.0/16"  # other new bridges take the next /24 of it not used here
CONTAINER_IFNAME = "eth0"
IFNAMSIZ = 16

_RUNTIME_NS = "/proc/self/ns/net"
_NETNS_DIR = "/run/netns"  # `ip netns add` (/var/run is a link to /run)
_IFF_UP = 0x1
_IFA_F_PERMANENT = 0x80
_RT_SCOPE_UNIVERSE = 0
_CLONE_NEWNET = 0x40000000
_SIOCGIFADDR = 0x8915
_SIOCGIFNETMASK = 0x891B
_SIOCETHTOOL = 0x8946
_ETHTOOL_GDRVINFO = 0x3
_NETNS_LOCAL_DRIVERS = ("bridge",)  # cannot change namespace (the kernel says EINVAL)


# --- planning (before the fork: no netlink, no pyroute2) ---------------------------------------
class Device:
    """One linux.netDevices entry: host name → name in the container."""

    __slots__ = ("host_name", "target", "field", "template")

    def __init__(self, host_name: str, target: str, field: str) -> None:
        self.host_name = host_name
        self.target = target
        self.field = field
        self.template = "%d" in target


class BridgePlan:
    """The container's bridge network: what `attach` makes, with the leased address."""

    def __init__(self, name: str, field: str, nsid: str) -> None:
        self.name = name
        self.field = field  # "--net" or "annotations.org.pyoci.net.bridge": errors name it
        self.nsid = nsid  # the runtime's network namespace, "dev:inode"
        self.key = f"{nsid}/{name}"  # the network in the address store
        self.netns_path = _ns_path_of(nsid)  # to reach it again from `delete`
        self.subnet = ""
        self.prefixlen = 0
        self.bridge_address = ""
        self.broadcast = ""
        self.gateway = ""
        self.address = ""
        self.mtu: int | None = None
        self.veth = "vp" + os.urandom(4).hex()  # host end: 10 characters, random

    def record(self) -> dict:
        """What `delete` needs (state.json "network")."""
        return {
            "bridge": self.name,
            "key": self.key,
            "nsid": self.nsid,
            "netns": self.netns_path,
            "address": f"{self.address}/{self.prefixlen}",
            "gateway": self.gateway,
            "veth": self.veth,
        }


def plan_network(
    spec, net: str | None, root: str, container_id: str, on_lease=None
) -> NetPlan | None:
    """Check what the config and `--net` ask for and lease the address; None if nothing.
    `on_lease(record)` is called under the store's lock before the lease is written: the
    early state records it first, and a create killed after the write is still undone by
    `delete` (F17)."""
    devices = _plan_devices(spec.linux.get("netDevices"))
    bridge_name, field = _bridge_choice(spec.annotations, net)
    if not devices and bridge_name is None:
        return None
    what = field if bridge_name is not None else "linux.netDevices"
    ns = spec.namespace("network")
    if ns is None:
        raise PyociError(
            f"{what}: needs a network namespace in linux.namespaces (without one the "
            "container shares the runtime's)"
        )
    runtime_nsid = _nsid(_RUNTIME_NS)
    if ns.path and _nsid_or_none(ns.path) == runtime_nsid:  # (a bad path: plan_namespaces)
        raise PyociError(
            f"{what}: the network namespace {ns.path} is the runtime's own; the container "
            "needs another"
        )
    for dev in devices:
        _check_host_device(dev)
    plan = NetPlan(devices, root, container_id)
    if bridge_name is not None:
        if devices and any(d.target == CONTAINER_IFNAME for d in devices):
            raise PyociError(
                f"linux.netDevices: {CONTAINER_IFNAME} is the bridge network's interface "
                f"({field}); choose another name"
            )
        plan.bridge = _plan_bridge(
            spec.annotations, bridge_name, field, runtime_nsid, plan, on_lease
        )
    return plan


def _bridge_choice(annotations: dict, net: str | None) -> tuple[str | None, str]:
    """(bridge name or None, the field that asked for it)."""
    keys = [key for key in annotations if key.startswith(ANNOTATION_PREFIX)]
    for key in keys:
        if key not in KNOWN_KEYS:
            raise PyociError(
                f"annotations.{key}: unknown pyoci network key (known: {', '.join(KNOWN_KEYS)})"
            )
    if net is not None:
        if net == "none":
            return None, "--net"
        if net == "bridge":
            return annotations.get(BRIDGE_KEY) or DEFAULT_BRIDGE, "--net"
        if net.startswith("bridge:") and net[len("bridge:") :]:
            name = net[len("bridge:") :]
            _check_ifname(name, "--net")
            return name, "--net"
        raise PyociError(f"--net: expected bridge, bridge:NAME or none, not {net!r}")
    if BRIDGE_KEY in annotations:
        name = annotations[BRIDGE_KEY] or DEFAULT_BRIDGE
        _check_ifname(name, f"annotations.{BRIDGE_KEY}")
        return name, f"annotations.{BRIDGE_KEY}"
    if keys:
        raise PyociError(f"annotations.{keys[0]}: needs annotations.{BRIDGE_KEY} or --net bridge")
    return None, ""


def _check_ifname(name: str, field: str, template: bool = False) -> None:
    """The kernel's dev_valid_name, and at most one %d (a template) where allowed."""
    ok = (
        0 < len(name.encode()) < IFNAMSIZ
        and name not in (".", "..")
        and not any(c in "/:" or c.isspace() for c in name)
    )
    if ok and "%" in name:
        ok = template and name.count("%") == 1 and "%d" in name
    if not ok:
        extra = " (at most one %d)" if template else ""
        raise PyociError(
            f"{field}: {name!r} is not a valid network device name (1-15 characters, no "
            f"'/', ':' or spaces{extra})"
        )


def _plan_devices(raw: object) -> list[Device]:
    if not raw:
        return []
    if not isinstance(raw, dict):
        raise PyociError("linux.netDevices: must be an object (host name → {name})")
    devices: list[Device] = []
    targets: dict[str, str] = {}
    for host_name, entry in raw.items():
        field = f"linux.netDevices.{host_name}"
        _check_ifname(host_name, field)
        if not isinstance(entry, dict):
            raise PyociError(f"{field}: must be an object")
        target = entry.get("name") or host_name
        if not isinstance(target, str):
            raise PyociError(f"{field}.name: must be a string")
        _check_ifname(target, f"{field}.name", template=True)
        if "%d" not in target:
            if target in targets:
                raise PyociError(f"{field}.name: {target} is also the name of {targets[target]}")
            if target == "lo":
                raise PyociError(f"{field}.name: lo exists in every network namespace")
            targets[target] = field
        devices.append(Device(host_name, target, field))
    return devices


def _check_host_device(dev: Device) -> None:
    """The spec: check that the move is possible before moving anything."""
    import _socket

    try:
        _socket.if_nametoindex(dev.host_name)
    except OSError:
        raise PyociError(
            f"{dev.field}: no such network device in the runtime's network namespace"
        ) from None
    if dev.host_name == "lo" or _driver(dev.host_name) in _NETNS_LOCAL_DRIVERS:
        raise PyociError(
            f"{dev.field}: this device cannot leave its network namespace (loopback, bridge)"
        )


def _plan_bridge(
    annotations: dict, name: str, field: str, nsid: str, plan, on_lease=None
) -> BridgePlan:
    import ipaddress

    from pyoci.netstore import Store

    if os.geteuid() != 0:
        raise PyociError(f"{field}: bridge networking needs root")
    bridge = BridgePlan(name, field, nsid)
    fixed = _annotation_interface(annotations, ADDRESS_KEY)
    gateway = _annotation_address(annotations, GATEWAY_KEY)
    wanted_subnet = None
    if annotations.get(SUBNET_KEY):
        try:
            wanted_subnet = ipaddress.IPv4Network(annotations[SUBNET_KEY])
        except ValueError as err:
            raise PyociError(f"annotations.{SUBNET_KEY}: {err}") from None
        if wanted_subnet.prefixlen > 30:
            raise PyociError(f"annotations.{SUBNET_KEY}: {wanted_subnet} has no room for hosts")
    if annotations.get(MTU_KEY):
        text = annotations[MTU_KEY]
        if not text.isdigit() or not 68 <= int(text) <= 65535:
            raise PyociError(f"annotations.{MTU_KEY}: {text!r} is not an MTU (68-65535)")
        bridge.mtu = int(text)
    existing = None
    driver = _driver(name)
    if driver is not None:  # the device exists
        if driver != "bridge":
            raise PyociError(f"{field}: {name} exists and is not a bridge")
        existing = _ipv4_of(name)
    with Store(plan.root) as store:
        store.drop_stale()
        entry = store.network(bridge.key)
        if entry is None:
            if wanted_subnet is not None:
                subnet = wanted_subnet
            elif existing is not None:
                subnet = ipaddress.IPv4Interface(existing).network
            elif fixed is not None and fixed.network.prefixlen < 32:
                subnet = fixed.network
            else:
                subnet = _free_subnet(store.subnets_in(nsid), name)
            if existing is not None and ipaddress.IPv4Interface(existing).network == subnet:
                bridge_address = str(ipaddress.IPv4Interface(existing).ip)
            elif gateway is not None and gateway in subnet:
                bridge_address = str(gateway)
            else:
                bridge_address = str(next(subnet.hosts()))
            entry = store.add_network(
                bridge.key,
                {"bridge": name, "subnet": str(subnet), "bridgeAddress": bridge_address},
            )
        subnet = ipaddress.IPv4Network(entry["subnet"])
        if wanted_subnet is not None and wanted_subnet != subnet:
            raise PyociError(f"annotations.{SUBNET_KEY}: bridge {name} has subnet {subnet}")
        if gateway is not None and (gateway not in subnet or gateway in _edges(subnet)):
            raise PyociError(
                f"annotations.{GATEWAY_KEY}: {gateway} is outside bridge {name}'s subnet {subnet}"
            )
        fixed_text = None
        if fixed is not None:
            if fixed.ip not in subnet or fixed.ip in _edges(subnet):
                raise PyociError(
                    f"annotations.{ADDRESS_KEY}: {fixed.ip} is outside bridge {name}'s "
                    f"subnet {subnet}"
                )
            if fixed.network.prefixlen not in (32, subnet.prefixlen):
                raise PyociError(
                    f"annotations.{ADDRESS_KEY}: /{fixed.network.prefixlen} does not match "
                    f"bridge {name}'s subnet {subnet}"
                )
            fixed_text = str(fixed.ip)
        field_for_address = f"annotations.{ADDRESS_KEY}" if fixed is not None else field
        bridge.address = store.lease(
            bridge.key, plan.container_id, bridge.veth, fixed_text, field_for_address
        )
        bridge.subnet = str(subnet)
        bridge.prefixlen = subnet.prefixlen
        bridge.broadcast = str(subnet.broadcast_address)
        bridge.bridge_address = entry["bridgeAddress"]
        bridge.gateway = str(gateway) if gateway is not None else bridge.bridge_address
        if on_lease is not None:
            on_lease(bridge.record())
    plan.leased = True
    return bridge


def _edges(subnet) -> tuple:
    return (subnet.network_address, subnet.broadcast_address)


def _annotation_interface(annotations: dict, key: str):
    import ipaddress

    if not annotations.get(key):
        return None
    try:
        return ipaddress.IPv4Interface(annotations[key])
    except ValueError as err:
        raise PyociError(f"annotations.{key}: {err} (IPv4 only)") from None


def _annotation_address(annotations: dict, key: str):
    import ipaddress

    if not annotations.get(key):
        return None
    try:
        return ipaddress.IPv4Address(annotations[key])
    except ValueError as err:
        raise PyociError(f"annotations.{key}: {err} (IPv4 only)") from None


def _free_subnet(used: set[str], name: str):
    import ipaddress

    if name == DEFAULT_BRIDGE and DEFAULT_SUBNET not in used:
        return ipaddress.IPv4Network(DEFAULT_SUBNET)
    for candidate in ipaddress.IPv4Network(SUBNET_POOL).subnets(new_prefix=24):
        if str(candidate) not in used and str(candidate) != DEFAULT_SUBNET:
            return candidate
    raise PyociError(f"annotations.{SUBNET_KEY}: every /24 of {SUBNET_POOL} is in use here")


# --- ioctls on a device of the runtime's namespace ---------------------------------------------
def _ioctl(request: int, arg: bytes) -> bytes:
    import _socket
    import fcntl

    s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM, 0)
    try:
        return fcntl.ioctl(s.fileno(), request, arg)
    finally:
        s.close()


def _driver(name: str) -> str | None:
    """The device's driver ("bridge", "veth", ...) by ETHTOOL_GDRVINFO; "" when it has none
    to report (lo); None when there is no such device."""
    import array
    import errno
    import struct

    info = array.array("B", struct.pack("I", _ETHTOOL_GDRVINFO) + bytes(192))
    request = struct.pack("16sP16x", name.encode(), info.buffer_info()[0])
    try:
        _ioctl(_SIOCETHTOOL, request)
    except OSError as err:
        return None if err.errno == errno.ENODEV else ""
    return bytes(info[4:36]).split(b"\0", 1)[0].decode(errors="replace")


def _ipv4_of(name: str) -> str | None:
    """The device's primary IPv4 address as "A.B.C.D/N", or None."""
    import _socket
    import struct

    request = struct.pack("16s24x", name.encode())
    try:
        address = _ioctl(_SIOCGIFADDR, request)[20:24]
        mask = _ioctl(_SIOCGIFNETMASK, request)[20:24]
    except OSError:
        return None
    prefix = bin(int.from_bytes(mask, "big")).count("1")
    return f"{_socket.inet_ntoa(address)}/{prefix}"


# --- network namespaces ------------------------------------------------------------------------
def _nsid(path: str) -> str:
    st = os.stat(path)
    return f"{st.st_dev}:{st.st_ino}"


def _nsid_or_none(path: str) -> str | None:
    try:
        return _nsid(path)
    except OSError:
        return None


def _ns_path_of(nsid: str) -> str | None:
    """A path that names the namespace `nsid` after this process is gone: the host's (pid 1's)
    or one made by `ip netns add`; None for an anonymous one."""
    if _nsid_or_none("/proc/1/ns/net") == nsid:
        return "/proc/1/ns/net"
    try:
        names = os.listdir(_NETNS_DIR)
    except OSError:
        return None
    for name in sorted(names):
        path = os.path.join(_NETNS_DIR, name)
        if _nsid_or_none(path) == nsid:
            return path
    return None


def _iproute_in(ns_fd: int):
    """An IPRoute whose netlink socket lives in the namespace `ns_fd`: this process enters it,
    makes the socket, and comes back (a socket stays in the namespace it was made in)."""
    import socket  # (pyroute2 imports it anyway)

    from pyroute2 import IPRoute

    from pyoci.linux import sysbind

    own = os.open(_RUNTIME_NS, os.O_RDONLY | os.O_CLOEXEC)
    try:
        sysbind.setns(ns_fd, _CLONE_NEWNET)
        try:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 0)
        finally:
            sysbind.setns(own, _CLONE_NEWNET)
    finally:
        os.close(own)
    return IPRoute(use_socket=sock)


def _nl_error(err: BaseException, context: str) -> PyociError:
    code = getattr(err, "code", 0) or getattr(err, "errno", 0) or 0
    reason = os.strerror(code).lower() if code else str(err)
    return PyociError(f"{context}: {reason}", code)


# --- attach: the parent configures the container's namespace ----------------------------------
class _Moved:
    __slots__ = ("device", "index", "name", "addresses", "was_up")

    def __init__(self, device: Device, addresses: list[dict], was_up: bool) -> None:
        self.device = device
        self.index = 0
        self.name = device.target
        self.addresses = addresses
        self.was_up = was_up


class NetPlan:
    """What `create` does to the network, from plan to attach to undo."""

    def __init__(self, devices: list[Device], root: str, container_id: str) -> None:
        self.devices = devices
        self.bridge: BridgePlan | None = None
        self.root = root
        self.container_id = container_id
        self.leased = False
        self.veth_made = False
        self.moved: list[_Moved] = []
        self.init_pid = 0
        self._host = None
        self._ctr = None
        self._ctr_fd = -1
        self._host_fd = -1
        self._on_move = None

    def prepare(self) -> None:
        """Import pyroute2 now (~150-220 ms), while the children set the container up."""
        import pyroute2  # noqa: F401

    def record(self) -> dict | None:
        """state.json "network": what `delete` undoes (netDevices: nothing, by the spec)."""
        return self.bridge.record() if self.bridge is not None else None

    def attach(self, init_pid: int, on_move=None) -> None:
        """Move the devices in and connect the bridge, through the init's namespace.
        `on_move(record)` is called before each device moves and once it has its name inside:
        the early state records them, for the `delete` of a create killed later (F20)."""
        from pyroute2 import IPRoute

        self.init_pid = init_pid
        self._on_move = on_move
        try:
            self._ctr_fd = os.open(f"/proc/{init_pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            raise PyociError("container init exited during create") from None
        from pyroute2.netlink.exceptions import NetlinkError

        try:
            self._host_fd = os.open(_RUNTIME_NS, os.O_RDONLY | os.O_CLOEXEC)
            self._host = IPRoute()
            self._ctr = _iproute_in(self._ctr_fd)
            if self.devices:
                self._move_devices()
            if self.bridge is not None:
                self._connect_bridge()
        except (NetlinkError, OSError) as err:  # each step names its field; these are rarer
            what = self.bridge.field if self.bridge is not None else "linux.netDevices"
            raise _nl_error(err, what) from None

    def _move_devices(self) -> None:
        from pyroute2.netlink.exceptions import NetlinkError

        host, ctr = self._host, self._ctr
        inside = {link.get("ifname") for link in ctr.get_links()}
        found = []
        for dev in self.devices:  # every check before the first move
            if not dev.template and dev.target in inside:
                raise PyociError(
                    f"{dev.field}.name: {dev.target} already exists in the container's "
                    "network namespace"
                )
            index = host.link_lookup(ifname=dev.host_name)
            if not index:
                raise PyociError(
                    f"{dev.field}: no such network device in the runtime's network namespace"
                )
            found.append((dev, index[0]))
        for dev, index in found:
            link = host.get_links(index)[0]
            addresses = [
                _saved_address(a) for a in host.get_addr(index=index) if _permanent_global(a)
            ]
            before = {link["index"] for link in ctr.get_links()}
            moved = _Moved(dev, addresses, bool(link["flags"] & _IFF_UP))
            self._checkpoint_moves(moved)
            try:
                host.link("set", index=index, net_ns_fd=self._ctr_fd, ifname=dev.target)
            except NetlinkError as err:
                raise _nl_error(err, f"{dev.field}: moving it into the container") from None
            self._find_moved(moved, index, before)
            self.moved.append(moved)
            if moved.device.template:
                self._checkpoint_moves()  # its name inside, known now
            try:
                for address in addresses:
                    ctr.addr("add", index=moved.index, **address)
                ctr.link("set", index=moved.index, state="up")
            except NetlinkError as err:
                raise _nl_error(err, f"{dev.field}: setting up {moved.name}") from None
            faults.point("net:device-moved")

    def _checkpoint_moves(self, pending: _Moved | None = None) -> None:
        """The early state's record of the devices moved in (and the one about to be)."""
        if self._on_move is None:
            return
        from pyoci.state import proc_start_time

        nsid = _nsid(_RUNTIME_NS)
        self._on_move(
            {
                "pid": self.init_pid,
                "pidStartTime": proc_start_time(self.init_pid),
                "nsid": nsid,
                "netns": _ns_path_of(nsid),
                "devices": [
                    {"host": m.device.host_name, "name": m.name, "addresses": m.addresses,
                     "up": m.was_up}
                    for m in [*self.moved, *([pending] if pending is not None else [])]
                ],
            }
        )  # fmt: skip

    def _find_moved(self, moved: _Moved, old_index: int, before: set[int]) -> None:
        """The device's index and name inside: the kernel keeps the index when it is free
        there; with a %d template only the kernel knows the name."""
        links = self._ctr.get_links()
        by_index = {link["index"]: link for link in links}
        candidates = [link for link in links if link["index"] not in before]
        if old_index in by_index and by_index[old_index] in candidates:
            pick = by_index[old_index]
        elif len(candidates) == 1:
            pick = candidates[0]
        else:
            pick = next((c for c in candidates if c.get("ifname") == moved.name), None)
        if pick is None:
            raise PyociError(f"{moved.device.field}: moved, but not found in the container")
        moved.index = pick["index"]
        moved.name = pick.get("ifname")

    def _connect_bridge(self) -> None:
        from pyroute2.netlink.exceptions import NetlinkError

        from pyoci.netstore import Store

        b, host, ctr = self.bridge, self._host, self._ctr
        if ctr.link_lookup(ifname=CONTAINER_IFNAME):
            raise PyociError(
                f"{b.field}: {CONTAINER_IFNAME} already exists in the container's network namespace"
            )
        # Under the store's lock: `delete` of the network's last container removes the
        # bridge under it too, so it cannot vanish between here and the veth's enslaving
        # (our lease, taken at plan time, keeps it).
        with Store(self.root) as store:
            entry = store.network(b.key)
            if entry is None or b.address not in (entry.get("leases") or {}):
                raise PyociError(f"{b.field}: the address store lost {b.address}'s lease")
            bridge_index, bridge_mtu = self._ensure_bridge(entry, store)
        mtu = b.mtu or bridge_mtu
        try:
            host.link(
                "add",
                ifname=b.veth,
                kind="veth",
                peer={"ifname": CONTAINER_IFNAME, "net_ns_fd": self._ctr_fd},
            )
        except NetlinkError as err:
            raise _nl_error(err, f"{b.field}: creating the veth pair {b.veth}") from None
        self.veth_made = True
        faults.point("net:veth")
        step = f"{b.field}: connecting {b.veth} to {b.name}"
        try:
            veth = host.link_lookup(ifname=b.veth)[0]
            host.link("set", index=veth, master=bridge_index, mtu=mtu, state="up")
            step = f"{b.field}: {CONTAINER_IFNAME}"
            eth0 = ctr.link_lookup(ifname=CONTAINER_IFNAME)[0]
            step = f"annotations.{MTU_KEY}: setting MTU {mtu}" if b.mtu else step
            ctr.link("set", index=eth0, mtu=mtu)
            step = f"{b.field}: {CONTAINER_IFNAME} address {b.address}/{b.prefixlen}"
            ctr.addr(
                "add",
                index=eth0,
                address=b.address,
                prefixlen=b.prefixlen,
                broadcast=b.broadcast,
            )
            ctr.link("set", index=eth0, state="up")
            step = f"{b.field}: default route via {b.gateway}"
            ctr.route("add", dst="0.0.0.0/0", gateway=b.gateway)
        except NetlinkError as err:
            raise _nl_error(err, step) from None
        faults.point("net:attached")

    def _ensure_bridge(self, entry: dict, store) -> tuple[int, int]:
        """The bridge, made if missing, with its address, up; (index, MTU)."""
        import _socket

        from pyroute2.netlink.exceptions import NetlinkError

        b, host = self.bridge, self._host
        try:
            index = host.link_lookup(ifname=b.name)
            if not index:
                # Recorded first (F18): killed after the add, `delete` still removes it.
                entry["createdBridge"] = True
                store.save()
                try:
                    host.link("add", ifname=b.name, kind="bridge")
                except NetlinkError as err:
                    entry["createdBridge"] = False
                    store.save()
                    if err.code != 17:  # EEXIST: another root's create was first
                        raise
                faults.point("net:bridge")
                index = host.link_lookup(ifname=b.name)
            link = host.get_links(index[0])[0]
            if link.get(("linkinfo", "kind")) != "bridge":
                raise PyociError(f"{b.field}: {b.name} exists and is not a bridge")
            have = {
                (a.get("address"), a["prefixlen"])
                for a in host.get_addr(index=index[0], family=_socket.AF_INET)
            }
            if (b.bridge_address, b.prefixlen) not in have:
                added = not entry.get("createdBridge")
                if added:  # recorded first, as the bridge
                    entry["addedAddress"] = True
                    store.save()
                try:
                    host.addr(
                        "add",
                        index=index[0],
                        address=b.bridge_address,
                        prefixlen=b.prefixlen,
                        broadcast=b.broadcast,
                    )
                except NetlinkError:
                    if added:
                        entry["addedAddress"] = False
                        store.save()
                    raise
            host.link("set", index=index[0], state="up")
        except NetlinkError as err:
            raise _nl_error(err, f"{b.field}: bridge {b.name}") from None
        return index[0], link.get("mtu") or 1500

    def close(self) -> None:
        """The sockets and namespace fds of attach (`create` succeeded, or undo is done)."""
        for name in ("_host", "_ctr"):
            ipr = getattr(self, name)
            if ipr is not None:
                try:
                    ipr.close()
                except Exception:  # noqa: BLE001  (closing must not mask the real error)
                    pass
                setattr(self, name, None)
        for name in ("_ctr_fd", "_host_fd"):
            fd = getattr(self, name)
            if fd >= 0:
                os.close(fd)
                setattr(self, name, -1)

    def undo(self, log=None) -> None:
        """A failed create: move the devices back (while the container's namespace is still
        held: its fd, or the init), then remove the veth and return the lease."""
        try:
            if self.moved:
                self._move_back(log)
        finally:
            self.close()
            if self.leased and self.bridge is not None:
                record = self.bridge.record()
                if not self.veth_made:
                    record["veth"] = ""
                release(self.root, self.container_id, record, log)
                self.leased = False

    def _move_back(self, log) -> None:
        from pyroute2 import IPRoute

        if self._ctr is None:  # attach's sockets are closed: reopen through the init
            try:
                self._ctr_fd = os.open(f"/proc/{self.init_pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                self.moved = []  # the namespace is gone, and with it the devices
                return
            self._host_fd = os.open(_RUNTIME_NS, os.O_RDONLY | os.O_CLOEXEC)
            self._host = IPRoute()
            self._ctr = _iproute_in(self._ctr_fd)
        for moved in reversed(self.moved):
            dev = moved.device
            try:
                self._ctr.link("set", index=moved.index, state="down")
                self._ctr.link(
                    "set", index=moved.index, net_ns_fd=self._host_fd, ifname=dev.host_name
                )
                index = self._host.link_lookup(ifname=dev.host_name)[0]
                for address in moved.addresses:
                    try:
                        self._host.addr("add", index=index, **address)
                    except Exception:  # noqa: BLE001  (EEXIST and the like: best effort)
                        pass
                if moved.was_up:
                    self._host.link("set", index=index, state="up")
            except Exception as err:  # noqa: BLE001
                if log is not None:
                    log.warning(f"{dev.field}: could not move it back: {err}")
        self.moved = []


def move_back(record: dict, log=None) -> None:
    """`delete` of a create killed after it moved netDevices in (the early state's
    "netDevicesMoved"): move them back to the namespace they came from, as the failed create
    would have, while the init still holds the container's namespace; a device not found
    inside by its name stayed out, or died with the namespace (F20)."""
    from pyoci.state import proc_start_time

    pid = record.get("pid") or 0
    if not pid or proc_start_time(pid) != record.get("pidStartTime"):
        return  # the init is gone, and its namespace with it
    nsid = record.get("nsid") or ""
    home = _RUNTIME_NS if _nsid_or_none(_RUNTIME_NS) == nsid else record.get("netns")
    if not home or _nsid_or_none(home) != nsid:
        if log is not None:
            log.warning("linux.netDevices: their network namespace is gone: not moved back")
        return
    plan = NetPlan([], "", "")
    plan.init_pid = pid
    try:
        plan._ctr_fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        plan._host_fd = os.open(home, os.O_RDONLY | os.O_CLOEXEC)
        plan._host = _iproute_in(plan._host_fd)
        plan._ctr = _iproute_in(plan._ctr_fd)
        for entry in record.get("devices") or []:
            index = plan._ctr.link_lookup(ifname=entry.get("name") or "")
            if index:
                dev = Device(entry["host"], entry["name"], f"linux.netDevices.{entry['host']}")
                moved = _Moved(dev, entry.get("addresses") or [], bool(entry.get("up")))
                moved.index = index[0]
                plan.moved.append(moved)
        plan._move_back(log)
    except OSError as err:
        if log is not None:
            log.warning(f"linux.netDevices: not moved back: {err}")
    finally:
        plan.close()


def _permanent_global(msg) -> bool:
    flags = msg.get("IFA_FLAGS") or msg["flags"]
    return bool(flags & _IFA_F_PERMANENT) and msg["scope"] == _RT_SCOPE_UNIVERSE


def _saved_address(msg) -> dict:
    out = {"family": msg["family"], "address": msg.get("address"), "prefixlen": msg["prefixlen"]}
    if msg.get("local") and msg.get("local") != msg.get("address"):
        out["local"] = msg.get("local")
    if msg.get("broadcast"):
        out["broadcast"] = msg.get("broadcast")
    return out


# --- delete ------------------------------------------------------------------------------------
def release(root: str, container_id: str, record: dict, log=None, force: bool = False) -> None:
    """Return the container's address, remove its veth's host end, and with the network's
    last lease undo what pyoci did to the bridge (if nothing else is attached to it).

    A netlink error (a device or namespace gone meanwhile) is a warning. Anything else fails
    `delete` before its state directory goes, and the next `delete` finds the record again
    and finishes: taken for a warning, it lost the lease's return (the store is written only
    when its block succeeds) and left the bridge for good (F19). `force` (a `delete --force`
    after such a failure): the problem is a warning, so a container whose release keeps
    failing can still be deleted."""
    try:
        _release(root, container_id, record, log)
    except Exception as err:  # noqa: BLE001
        msg = err.msg if isinstance(err, PyociError) else f"{type(err).__name__}: {err}"
        if not force:
            raise PyociError(f'container "{container_id}": network cleanup: {msg}') from None
        if log is not None:
            log.warning(f'container "{container_id}": network cleanup: {msg} (left as it is)')


def _release(root: str, container_id: str, record: dict, log) -> None:
    from pyoci.netstore import Store

    key = record.get("key") or ""
    address = (record.get("address") or "").split("/")[0]
    veth = record.get("veth") or ""
    bridge = record.get("bridge") or ""
    with Store(root) as store:
        last = store.release(key, address, container_id)
        entry = store.network(key)
        nsid = record.get("nsid") or ""
        here = _nsid_or_none(_RUNTIME_NS) == nsid
        if here and not last and not _exists(veth):
            return  # the common case: the veth died with the container's namespace
        try:
            host = _runtime_iproute(record, here)
        except (OSError, PyociError) as err:
            if log is not None:
                log.warning(f'container "{container_id}": network cleanup: {err}')
            host = None
        if host is None:  # the runtime's namespace is gone, and its bridge and veths with it
            if last and entry is not None and _ns_path_of(nsid) is None:
                store.drop_network(key)
            return
        try:
            _cleanup(host, veth, bridge, entry if last else None, store, key, log)
        finally:
            host.close()


def _exists(name: str) -> bool:
    """A device of this name in our namespace (one ioctl: no pyroute2 for it)."""
    import _socket

    if not name:
        return False
    try:
        _socket.if_nametoindex(name)
    except OSError:
        return False
    return True


def _runtime_iproute(record: dict, here: bool):
    from pyroute2 import IPRoute

    if here:
        return IPRoute()
    nsid = record.get("nsid") or ""
    for path in (record.get("netns"), _ns_path_of(nsid)):
        if path and _nsid_or_none(path) == nsid:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                return _iproute_in(fd)
            finally:
                os.close(fd)
    return None


def _cleanup(host, veth: str, bridge: str, last_entry, store, key: str, log) -> None:
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        try:
            index = host.link_lookup(ifname=veth) if veth else []
            if index and host.get_links(index[0])[0].get(("linkinfo", "kind")) == "veth":
                host.link("del", index=index[0])
        except NetlinkError as err:
            # ENODEV: going already. The kernel destroys a dead namespace's devices, the
            # veth pair with them, asynchronously: a delete right after the container's
            # exit can find our host end still there and then see it vanish. That is no
            # reason to leave the bridge and its entry behind (it did, when `delete` got
            # faster).
            if err.code != errno.ENODEV:
                raise
        faults.point("net:release")
        if last_entry is None:
            return
        index = host.link_lookup(ifname=bridge)
        if not index:
            store.drop_network(key)
            return
        ports = [link.get_attr("IFLA_IFNAME") for link in host.get_links()
                 if link.get("master") == index[0]]  # fmt: skip
        if [name for name in ports if name != veth]:  # (ours may still be on its way out)
            return  # something else is attached to it: keep it (and the entry)
        if last_entry.get("createdBridge"):
            host.link("del", index=index[0])
        elif last_entry.get("addedAddress"):
            subnet = last_entry.get("subnet", "/0")
            host.addr(
                "del",
                index=index[0],
                address=last_entry.get("bridgeAddress"),
                prefixlen=int(subnet.split("/")[1]),
            )
        store.drop_network(key)
    except NetlinkError as err:
        if log is not None:
            log.warning(f"network cleanup: {_nl_error(err, veth or bridge).msg}")
