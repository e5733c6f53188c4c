#!/usr/bin/env python3
"""Throughput of N creates by W parallel workers, pyoci against runc (issue 19 goal 5).

Why a separate tool: `make bench` reports only the wall time of the create phase; finding
out why pyoci degrades under concurrency needs the CPU the runtimes burn (user+sys of every
descendant, from wait4's rusage), the delete phase, and quick reruns of this one case.

Each runtime has a private --root and a copy of the same bundle (busybox, `sleep 1000`, the
shared rootfs read-only, each container its default cgroup by id). The runtimes alternate,
the order rotating every round; medians over the rounds are printed. The CPU is wait4's
rusage: every process of the runtime that exits (for pyoci the command and its stage 1), not
the one a created container leaves waiting (see `perf record -a` for that). Run as root.

    .venv/bin/python tools/parbench.py [-n 200] [-w 4] [--rounds 3] [--runtimes pyoci,runc]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BINARIES = {
    "pyoci": str(REPO / ".venv/bin/pyoci"),
    "runc": "/usr/sbin/runc",
    "crun": "/usr/bin/crun",
}


def timed(argv: list[str], lines: list[str]) -> tuple[float, float, float]:
    """(wall s, user s, sys s) of argv and all its descendants, `lines` on its stdin."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        done = subprocess.run(
            argv, input="\n".join(lines).encode(), stdout=subprocess.DEVNULL, stderr=err
        )
        wall = time.perf_counter() - start
        if done.returncode != 0:
            err.seek(0)
            raise SystemExit(f"{argv[:6]}: exit {done.returncode}: {err.read()[-500:]!r}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=200, help="containers per round")
    p.add_argument("-w", type=int, default=4, help="parallel workers")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--runtimes", default="pyoci,runc")
    p.add_argument("--pyoci", default=BINARIES["pyoci"], help="pyoci binary")
    args = p.parse_args()
    BINARIES["pyoci"] = args.pyoci
    names = args.runtimes.split(",")
    top = Path(tempfile.mkdtemp(prefix="pyoci-parbench-"))
    config = json.loads((REPO / "bundles/busybox/config.json").read_text())
    config["root"] = {"path": str(REPO / "bundles/busybox/rootfs"), "readonly": True}
    config["process"]["args"] = ["sleep", "1000"]
    config["ociVersion"] = "1.0.2"
    bundle = top / "bundle"
    bundle.mkdir()
    (bundle / "config.json").write_text(json.dumps(config))
    results: dict[str, dict[str, list[float]]] = {n: {} for n in names}
    tag = f"pb{os.getpid()}"
    try:
        for r in range(args.rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                base = [BINARIES[name], "--root", str(top / f"root-{name}")]
                ids = [f"{tag}-{name}-{r}-{i}" for i in range(args.n)]
                xargs = ["xargs", "-n1", f"-P{args.w}"]
                c = timed([*xargs, *base, "create", "--bundle", str(bundle)], ids)
                d = timed([*xargs, *base, "delete", "-f"], ids)
                row = results[name]
                for key, value in (
                    ("create wall", c[0]),
                    ("create cpu", c[1] + c[2]),
                    ("create user", c[1]),
                    ("create sys", c[2]),
                    ("delete wall", d[0]),
                    ("delete cpu", d[1] + d[2]),
                ):
                    row.setdefault(key, []).append(value)
                print(
                    f"round {r} {name}: create wall {c[0]:.2f}s cpu {c[1] + c[2]:.2f}s "
                    f"(u {c[1]:.2f} s {c[2]:.2f}); delete wall {d[0]:.2f}s cpu {d[1] + d[2]:.2f}s",
                    flush=True,
                )
    finally:
        for name in names:
            root = top / f"root-{name}"
            if root.exists():
                left = subprocess.run(
                    [BINARIES[name], "--root", str(root), "list", "-q"],
                    capture_output=True,
                    text=True,
                ).stdout.split()
                for cid in left:
                    subprocess.run([BINARIES[name], "--root", str(root), "delete", "-f", cid])
        shutil.rmtree(top, ignore_errors=True)
    keys = list(results[names[0]])
    print(f"\nmedians of {args.rounds} rounds, {args.n} containers, {args.w} workers (seconds)")
    print(
        f"{'':14}" + "".join(f"{n:>10}" for n in names) + ("     ratio" if len(names) > 1 else "")
    )
    for key in keys:
        meds = [statistics.median(results[n][key]) for n in names]
        ratio = f"{meds[0] / meds[1]:10.2f}" if len(meds) > 1 and meds[1] else ""
        print(f"{key:14}" + "".join(f"{m:10.2f}" for m in meds) + ratio)


if __name__ == "__main__":
    main()
