"""The bridge address store: which address of which bridge is leased to which container.

One small JSON file per state root, `<root>/.net/leases.json`, read and rewritten (temp file +
rename) under an exclusive flock of `<root>/.net/lock`, so two concurrent `create`s never get
the same address. (`.net` cannot be a container id: ids never start with a dot.)

A network is keyed by the runtime's network namespace and the bridge's name
(`"<dev>:<inode>/<bridge>"`): `ip netns exec A pyoci ...` and `ip netns exec B pyoci ...` each
have their own `pyoci0`. Each network records its subnet, the bridge's own address, what pyoci
did to the bridge (`createdBridge`, `addedAddress`: undone with the last lease) and the leases
(`address → {"id", "veth"}`). A lease whose container's state directory is gone (a `create`
killed half-way) is dropped the next time the store is opened for a lease.

Used only on the networking paths (pyoci.linux.network); the default `create` never opens it.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os

from pyoci import jsonfast
from pyoci.errors import PyociError

STORE_DIR = ".net"
STORE_FILE = "leases.json"
LOCK_FILE = "lock"


class Store:
    """`with Store(root) as store:` holds the lock; changes are written when the block ends
    without an exception."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.dir = os.path.join(root, STORE_DIR)
        self.path = os.path.join(self.dir, STORE_FILE)
        self.fd = -1
        self.data: dict = {}
        self.dirty = False

    def __enter__(self) -> Store:
        try:
            os.mkdir(self.dir, 0o700)
        except FileExistsError:
            pass
        except OSError as err:
            raise PyociError(
                f"--root: {self.dir}: {(err.strerror or str(err)).lower()}", err.errno or 0
            ) from None
        self.fd = os.open(
            os.path.join(self.dir, LOCK_FILE), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600
        )
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        try:
            with open(self.path, "rb") as f:
                text = f.read()
        except FileNotFoundError:
            text = b""
        try:
            data = jsonfast.loads(text) if text.strip() else {}
        except ValueError:
            data = {}  # a torn file cannot happen (rename); a hand-edited one is reset
        self.data = data if isinstance(data, dict) else {}
        self.data.setdefault("networks", {})
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if self.dirty and exc_type is None:
                self.save()
        finally:
            os.close(self.fd)  # releases the flock
            self.fd = -1

    def save(self) -> None:
        """Write now, inside the block: what pyoci is about to do to a bridge is recorded
        before it does it, so that a create killed or failing right after is undone (F18)."""
        from pyoci.state import write_atomic

        write_atomic(self.path, jsonfast.dumps(self.data, indent=1).encode())
        self.dirty = False

    # --- networks ------------------------------------------------------------------------------
    @property
    def networks(self) -> dict[str, dict]:
        return self.data["networks"]

    def network(self, key: str) -> dict | None:
        return self.networks.get(key)

    def add_network(self, key: str, entry: dict) -> dict:
        entry.setdefault("leases", {})
        entry.setdefault("createdBridge", False)
        entry.setdefault("addedAddress", False)
        self.networks[key] = entry
        self.dirty = True
        return entry

    def drop_network(self, key: str) -> None:
        if self.networks.pop(key, None) is not None:
            self.dirty = True

    def touch(self) -> None:
        """The caller changed an entry in place."""
        self.dirty = True

    def subnets_in(self, nsid: str) -> set[str]:
        """Subnets of every network of the runtime network namespace `nsid`."""
        prefix = nsid + "/"
        return {e["subnet"] for k, e in self.networks.items() if k.startswith(prefix)}

    # --- leases --------------------------------------------------------------------------------
    def drop_stale(self) -> None:
        """Leases of containers whose state directory is gone (a create killed half-way)."""
        for entry in self.networks.values():
            leases = entry.get("leases") or {}
            for address, lease in list(leases.items()):
                if not os.path.isdir(os.path.join(self.root, str(lease.get("id")))):
                    del leases[address]
                    self.dirty = True

    def lease(
        self,
        key: str,
        container_id: str,
        veth: str,
        fixed: str | None = None,
        field: str = "",
    ) -> str:
        """Lease `fixed` (checked to be free) or the lowest free host address of the network's
        subnet other than the bridge's; returns it."""
        entry = self.networks[key]
        subnet = ipaddress.ip_network(entry["subnet"])
        leases = entry.setdefault("leases", {})
        taken = {entry.get("bridgeAddress")}
        if fixed is not None:
            if fixed in taken:
                raise PyociError(f"{field}: {fixed} is the bridge's own address")
            holder = leases.get(fixed)
            if holder is not None:
                raise PyociError(f"{field}: {fixed} is in use (container {holder.get('id')!r})")
            address = fixed
        else:
            address = None
            for host in subnet.hosts():
                text = str(host)
                if text not in taken and text not in leases:
                    address = text
                    break
            if address is None:
                raise PyociError(f"{field}: no free address left in {subnet}")
        leases[address] = {"id": container_id, "veth": veth}
        self.dirty = True
        return address

    def release(self, key: str, address: str, container_id: str) -> bool:
        """Drop the lease if it is still this container's; True if the network has no lease
        left afterwards (the caller may then undo what pyoci did to the bridge)."""
        entry = self.networks.get(key)
        if entry is None:
            return False
        leases = entry.setdefault("leases", {})
        lease = leases.get(address)
        if lease is not None and lease.get("id") == container_id:
            del leases[address]
            self.dirty = True
        return not leases
