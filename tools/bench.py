#!/usr/bin/env python3
"""`make bench`: pyoci against runc (and crun) on this machine, printed as one table of ratios.

hyperfine does the timing (`-N`, `--export-json`); this file only sets each case up, runs the
runtimes in alternating rounds (each round rotates their order, so a noisy spell of a shared
machine does not land on one runtime only), merges the rounds' times and prints medians. The
raw times and the machine go to `--json` (bench-results.json).

Rows (issue 19):
- the floor: `python -I -S -c pass` with pyoci's own interpreter, which no Python command beats;
- busybox (bundles/busybox): `run` of /bin/true, `create`, `start`, `state`, `kill`, `delete`;
- `create` of the config.json podman and docker generate, captured at bench time by running
  each client with tests/compat/capture_runtime.py as its runtime (tests/compat reuses the same
  clients): with pyoci's compiled-seccomp cache emptied before every run (cold) and kept (warm);
- end to end through the clients: `podman run --rm IMAGE true` with `--runtime` pyoci vs runc,
  `ctr run --rm --runc-binary` pyoci vs runc (the image is built offline: tests/clients/images.py);
- growth: `state`, `create` and `list` with N created containers (`--growth`, default
  10,100,1000: about 2 of the bench's ~5 minutes), and 4 workers creating `--parallel` (200)
  containers;
- memory: RSS of the process a `created` container leaves waiting.
A case that fails for a runtime shows `n/a` and why; the bench goes on. Every container is
deleted at the end. crun runs in a cgroup-v1 view of the host (tests/integration/helpers.py,
V1_VIEW): crun 1.8 refuses hybrid cgroups. Run as root.

    .venv/bin/python tools/bench.py [--quick] [--growth 10,100] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for _sub in ("tests", "tests/integration", "tests/clients", "tests/compat"):
    sys.path.insert(0, str(REPO / _sub))

from helpers import V1_VIEW  # noqa: E402

RUNTIMES = {
    "pyoci": str(REPO / ".venv" / "bin" / "pyoci"),
    "runc": "/usr/sbin/runc",
    "crun": "/usr/bin/crun",
}
HYPERFINE = shutil.which("hyperfine") or "/usr/bin/hyperfine"
TIMEOUT = 600


class Runtime:
    """One runtime binary with a private --root; crun behind the v1 view."""

    def __init__(self, name: str, binary: str, top: Path) -> None:
        self.name, self.binary = name, binary
        self.root = top / f"root-{name}"
        self.prefix: tuple[str, ...] = V1_VIEW if name == "crun" else ()

    def argv(self, *args: str) -> list[str]:
        return [self.binary, "--root", str(self.root), *args]

    def sh(self, *args: str) -> str:
        return shlex.join(self.argv(*args))

    def call(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return run([*self.prefix, *self.argv(*args)], check=check)

    def delete_all(self) -> None:
        ids = self.call("list", "-q", check=False).stdout.split()
        if ids:
            run([*self.prefix, "xargs", "-n1", "-P4", *self.argv("delete", "-f")], ids, False)

    def create_many(self, bundle: Path, ids: list[str]) -> None:
        run(
            [*self.prefix, "xargs", "-n1", "-P2", *self.argv("create", "--bundle", str(bundle))],
            ids,
        )


def run(argv: list[str], lines: list[str] | None = None, check: bool = True):
    """Run argv (with `lines` on stdin); output through files, not pipes: a created
    container inherits the runtime's stdio and would hold a pipe open until it exits."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        feed = {"input": "\n".join(lines)} if lines is not None else {"stdin": subprocess.DEVNULL}
        result = subprocess.run(
            argv, **feed, stdout=out, stderr=err, text=True, timeout=TIMEOUT, check=False
        )
        out.seek(0)
        err.seek(0)
        result.stdout, result.stderr = out.read(), err.read()
    if check and result.returncode != 0:
        raise RuntimeError(f"{shlex.join(argv[-3:])}: {result.stderr.strip()[-300:]}")
    return result


class Bench:
    def __init__(self, args: argparse.Namespace, top: Path) -> None:
        self.args, self.top = args, top
        self.tag = f"b{os.getpid()}"
        self.runtimes = {
            n: Runtime(n, RUNTIMES[n] if n != "pyoci" else args.pyoci, top) for n in args.runtimes
        }
        self.rows: dict[str, dict] = {}
        self.sleep_bundle = self.bundle("busybox", ["sleep", "1000"])
        self.true_bundle = self.bundle("true", ["true"])

    # --- setup ---------------------------------------------------------------------------------
    def bundle(self, name: str, args: list[str], config: dict | None = None) -> Path:
        """bundles/busybox with `args`, its root the absolute path of the shared rootfs
        (read-only: nothing writes into it), ociVersion 1.0.2 (crun 1.8 refuses 1.2)."""
        config = config or json.loads((REPO / "bundles/busybox/config.json").read_text())
        config["root"] = {"path": str(REPO / "bundles/busybox/rootfs"), "readonly": True}
        config["process"]["args"] = args
        config["ociVersion"] = "1.0.2"
        path = self.top / f"bundle-{name}"
        path.mkdir()
        (path / "config.json").write_text(json.dumps(config))
        return path

    def cid(self, rt: Runtime, case: str) -> str:
        return f"{self.tag}-{rt.name}-{case}"

    # --- timing --------------------------------------------------------------------------------
    def row(self, key: str, title: str, unit: str = "ms") -> dict:
        return self.rows.setdefault(key, {"title": title, "unit": unit, "cells": {}})

    def hyperfine(
        self, rt: Runtime, command: list[str], prepare: str | None, runs: int, warmup: int
    ) -> list[float]:
        """Times (ms) of `command`; `prepare` (a shell line) runs untimed before each run."""
        out = self.top / "hf.json"
        argv = [
            *rt.prefix,
            HYPERFINE,
            "-N",
            "--style",
            "none",
            "--runs",
            str(runs),
            "--warmup",
            str(warmup),
            "--export-json",
            str(out),
        ]
        if prepare:
            argv += ["--prepare", shlex.join(["sh", "-c", prepare])]
        argv.append(shlex.join(command))
        result = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT)
        if result.returncode != 0:  # say why: the command's own error, run once more
            if prepare:
                run([*rt.prefix, "sh", "-c", prepare], check=False)
            again = run([*rt.prefix, *command], check=False)
            lines = [ln for ln in (again.stderr or result.stderr).splitlines() if ln.strip()]
            raise RuntimeError(lines[-1][-200:] if lines else f"hyperfine exit {result.returncode}")
        result = json.loads(out.read_text())["results"][0]
        self.cpu = (result["user"] + result["system"]) * 1000  # mean CPU time of a run
        return [t * 1000 for t in result["times"]]

    def measure(
        self,
        key: str,
        title: str,
        names: list[str],
        case: Callable[[Runtime], tuple[list[str], str | None]],
        runs: int | None = None,
        warmup: int | None = None,
        unit: str = "ms",
    ) -> None:
        """Time `case(rt)` = (command, prepare) for each runtime in `names`, alternating."""
        row = self.row(key, title, unit)
        runtimes = [self.runtimes[n] for n in names if n in self.runtimes]
        runs = runs or self.args.runs
        rounds = min(self.args.rounds, runs)
        times: dict[str, list[float]] = {rt.name: [] for rt in runtimes}
        cpu: dict[str, list[float]] = {rt.name: [] for rt in runtimes}
        for r in range(rounds):
            order = runtimes[r % len(runtimes) :] + runtimes[: r % len(runtimes)]
            for rt in order:
                if "error" in row["cells"].get(rt.name, {}):  # failed earlier
                    continue
                try:
                    command, prepare = case(rt)
                    n = runs // rounds + (1 if r < runs % rounds else 0)
                    got = self.hyperfine(
                        rt, command, prepare, n, self.args.warmup if warmup is None else warmup
                    )
                    times[rt.name] += got
                    cpu[rt.name] += [self.cpu] * len(got)
                except (RuntimeError, subprocess.TimeoutExpired, OSError) as err:
                    row["cells"][rt.name] = {"error": str(err)}
        for name, values in times.items():
            earlier = row["cells"].get(name, {})
            if "error" not in earlier and values:  # a second measure adds to the first
                row["cells"][name] = summary(earlier.get("values", []) + values)
                row["cells"][name]["cpu"] = statistics.fmean(earlier.get("cpus", []) + cpu[name])
                row["cells"][name]["cpus"] = earlier.get("cpus", []) + cpu[name]
        print(
            f"  {title}: "
            + ", ".join(
                f"{n} {fmt(row['cells'].get(n), unit)}" for n in names if n in self.runtimes
            ),
            flush=True,
        )

    def value(self, key: str, title: str, name: str, unit: str, fn: Callable[[], float]) -> None:
        """A row measured once per sample by `fn` (not a time)."""
        row = self.row(key, title, unit)
        try:
            row["cells"][name] = summary([fn() for _ in range(self.args.samples)])
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as err:
            row["cells"][name] = {"error": str(err)}

    # --- the cases -----------------------------------------------------------------------------
    def floor(self) -> None:
        """Measured before and after the short commands, into one cell: the floor of the
        same minutes of a shared machine."""
        python = Path(self.args.pyoci).read_text().splitlines()[0][2:].split()[0]
        self.measure(
            "floor",
            "floor: python -I -S -c pass",
            ["pyoci"],
            lambda _: ([python, "-I", "-S", "-c", "pass"], None),
        )

    def busybox(self) -> None:
        every = list(self.runtimes)
        b, t = str(self.sleep_bundle), str(self.true_bundle)

        def fresh(rt: Runtime, case: str, *more: str) -> str:
            cid = self.cid(rt, case)
            lines = [
                rt.sh("delete", "-f", cid) + " >/dev/null 2>&1",
                rt.sh("create", "--bundle", b, cid),
                *more,
            ]
            return "; ".join(lines)

        for command, title, bundle in (
            ("run", "run /bin/true", t),
            ("create", "create (busybox)", b),
        ):
            self.measure(
                command,
                title,
                every,
                lambda rt, command=command, bundle=bundle: (
                    rt.argv(command, "--bundle", bundle, self.cid(rt, command)),
                    rt.sh("delete", "-f", self.cid(rt, command)) + " 2>/dev/null; :",
                ),
            )
        self.measure(
            "start",
            "start",
            every,
            lambda rt: (rt.argv("start", self.cid(rt, "start")), fresh(rt, "start")),
        )
        for rt in self.runtimes.values():
            rt.call("create", "--bundle", b, self.cid(rt, "state"), check=False)
        self.measure(
            "state", "state", every, lambda rt: (rt.argv("state", self.cid(rt, "state")), None)
        )
        self.measure(
            "kill",
            "kill KILL",
            every,
            lambda rt: (rt.argv("kill", self.cid(rt, "kill"), "KILL"), fresh(rt, "kill")),
        )
        self.measure(
            "delete",
            "delete (stopped)",
            every,
            lambda rt: (
                rt.argv("delete", self.cid(rt, "delete")),
                fresh(
                    rt,
                    "delete",
                    rt.sh("kill", self.cid(rt, "delete"), "KILL"),
                    # until it is stopped: a delete of a running one fails
                    f"while {rt.sh('state', self.cid(rt, 'delete'))} | grep -q '\"running'; "
                    "do sleep 0.01; done",
                ),
            ),
        )
        self.floor()

    def client_configs(self) -> None:
        """`create` of podman's and docker's own config.json (captured now), seccomp cold/warm."""
        from compat_corpus import Case, DockerClient, PodmanClient
        from compat_probe import new_run, prepare

        for client_name, client_class in (("podman", PodmanClient), ("docker", DockerClient)):
            rows = [
                (f"{client_name}.create.{w}", f"create, {client_name}'s config, seccomp {w}")
                for w in ("cold", "warm")
            ]
            try:
                client = client_class()
                if client.skip:
                    raise RuntimeError(client.skip)
                try:
                    captured = client.capture(Case(client_name, "plain"))
                finally:
                    client.close()
                if captured.client_exit != 0 or not captured.config:
                    raise RuntimeError(f"{client_name} run through the capture wrapper failed")
            except Exception as err:  # noqa: BLE001 - a missing client is a row of n/a
                for key, title in rows:
                    for name in self.runtimes:
                        self.row(key, title)["cells"][name] = {"error": f"capture: {err}"[:200]}
                continue
            bundles = {}
            for rt in self.runtimes.values():
                probe_run = new_run(rt.name, self.top / f"{client_name}-{rt.name}")
                probe_run.workdir.mkdir()
                bundles[rt.name] = prepare(
                    captured.config,
                    captured.sources,
                    captured.private,
                    probe_run,
                    "bench",
                    REPO / "bundles/busybox/rootfs",
                )
                # Each container its default cgroup (by id), as the clients' own would be.
                config = json.loads((bundles[rt.name] / "config.json").read_text())
                config["linux"].pop("cgroupsPath", None)
                (bundles[rt.name] / "config.json").write_text(json.dumps(config))
            for key, title in rows:
                cold = key.endswith("cold")

                def case(
                    rt: Runtime, key: str = key, cold: bool = cold, bundles: dict = bundles
                ) -> tuple:
                    cid = self.cid(rt, key.replace(".", "-"))
                    prep = rt.sh("delete", "-f", cid) + " 2>/dev/null"
                    if cold:
                        prep += f"; rm -rf {shlex.quote(str(rt.root / '.seccomp-cache'))}"
                    return rt.argv("create", "--bundle", str(bundles[rt.name]), cid), prep + "; :"

                self.measure(key, title, list(self.runtimes), case)

    def clients_end_to_end(self) -> None:
        from compat_corpus import busybox_archive
        from images import TAG

        names = [n for n in ("pyoci", "runc") if n in self.runtimes]
        runs = max(3, self.args.runs // 2)
        key, title = "podman.run", "podman run --rm IMAGE true"
        world = None
        try:
            from test_podman import PodmanWorld

            if shutil.which("podman") is None or shutil.which("conmon") is None:
                raise RuntimeError("podman/conmon not installed")
            world = PodmanWorld(
                Path(tempfile.mkdtemp(prefix="pyoci-bench-podman-")), self.runtimes["pyoci"].binary
            )
            loaded = world.run(RUNTIMES["runc"], "load", "-i", str(busybox_archive(world.top)))
            if loaded.returncode != 0:
                raise RuntimeError(f"podman load: {loaded.stderr.strip()[-200:]}")
            os.environ["CONTAINERS_CONF"] = str(world.conf)
            self.measure(
                key,
                title,
                names,
                lambda rt: (
                    world.argv(rt.binary, ("run", "--rm", "--network", "none", TAG, "true")),
                    None,
                ),
                runs=runs,
            )
        except Exception as err:  # noqa: BLE001
            for name in names:
                self.row(key, title)["cells"].setdefault(name, {"error": str(err)[:200]})
        finally:
            os.environ.pop("CONTAINERS_CONF", None)
            if world is not None:
                world.cleanup([rt.binary for rt in self.runtimes.values() if rt.name in names])
        key, title = "ctr.run", "ctr run --rm --runc-binary RUNTIME IMAGE true"
        daemon = None
        try:
            from test_containerd import Containerd

            for tool in ("containerd", "ctr", "containerd-shim-runc-v2"):
                if shutil.which(tool) is None:
                    raise RuntimeError(f"{tool} not installed")
            daemon = Containerd(Path(tempfile.mkdtemp(prefix="pyoci-bench-ctr-")))
            daemon.start()
            daemon.ok("image", "import", str(busybox_archive(daemon.top)))
            os.environ["CONTAINERD_SNAPSHOTTER"] = daemon.env["CONTAINERD_SNAPSHOTTER"]
            self.measure(
                key,
                title,
                names,
                lambda rt: (
                    daemon.argv(
                        "run",
                        "--rm",
                        "--runc-binary",
                        rt.binary,
                        "--runc-root",
                        str(daemon.runc_root),
                        "--fifo-dir",
                        str(daemon.fifo_dir),
                        TAG,
                        self.cid(rt, "ctr"),
                        "true",
                    ),
                    None,
                ),
                runs=runs,
            )
        except Exception as err:  # noqa: BLE001
            for name in names:
                self.row(key, title)["cells"].setdefault(name, {"error": str(err)[:200]})
        finally:
            os.environ.pop("CONTAINERD_SNAPSHOTTER", None)
            if daemon is not None:
                daemon.stop()

    def growth(self) -> None:
        names = [n for n in ("pyoci", "runc") if n in self.runtimes]
        b = str(self.sleep_bundle)
        for n in self.args.growth:
            made: list[Runtime] = []
            try:
                for name in names:
                    rt = self.runtimes[name]
                    rt.delete_all()
                    rt.create_many(self.sleep_bundle, [f"{self.tag}-{name}-g{i}" for i in range(n)])
                    made.append(rt)
                self.measure(
                    f"growth.{n}.state",
                    f"state, {n} containers",
                    names,
                    lambda rt: (rt.argv("state", f"{self.tag}-{rt.name}-g0"), None),
                )
                self.measure(
                    f"growth.{n}.create",
                    f"create, {n} containers",
                    names,
                    lambda rt: (
                        rt.argv("create", "--bundle", b, self.cid(rt, "gnew")),
                        rt.sh("delete", "-f", self.cid(rt, "gnew")) + " 2>/dev/null; :",
                    ),
                )
                self.measure(
                    f"growth.{n}.list",
                    f"list --format json, {n} containers",
                    names,
                    lambda rt: (rt.argv("list", "--format", "json"), None),
                )
            except (RuntimeError, subprocess.TimeoutExpired) as err:
                for key, title in ((f"growth.{n}.state", f"state, {n} containers"),):
                    for name in names:
                        self.row(key, title)["cells"].setdefault(name, {"error": str(err)[:200]})
            finally:
                for rt in made:
                    rt.delete_all()
        count = self.args.parallel
        ids = self.top / "parallel-ids"
        ids.write_text("".join(f"{self.tag}-p{i}\n" for i in range(count)))
        self.measure(
            "parallel",
            f"{count} creates by 4 workers (wall)",
            names,
            lambda rt: (
                ["xargs", "-P4", "-n1", "-a", str(ids), *rt.argv("create", "--bundle", b)],
                "{ "
                + rt.sh("list", "-q")
                + " | xargs -r -n1 -P4 "
                + rt.sh("delete", "-f")
                + "; } >/dev/null 2>&1; :",
            ),
            runs=self.args.parallel_runs,
            warmup=0,
        )
        for name in names:
            self.runtimes[name].delete_all()

    def memory(self) -> None:
        for rt in self.runtimes.values():
            cid = self.cid(rt, "mem")

            def rss(rt: Runtime = rt, cid: str = cid) -> float:
                rt.call("delete", "-f", cid, check=False)
                rt.call("create", "--bundle", str(self.sleep_bundle), cid)
                pid = json.loads(rt.call("state", cid).stdout)["pid"]
                with open(f"/proc/{pid}/status") as f:
                    kib = next(int(ln.split()[1]) for ln in f if ln.startswith("VmRSS:"))
                rt.call("delete", "-f", cid)
                return float(kib)

            self.value("memory.created", "RSS of a created container", rt.name, "KiB", rss)

    def cleanup(self) -> None:
        for rt in self.runtimes.values():
            try:
                rt.delete_all()
            except (OSError, subprocess.TimeoutExpired):
                pass


# --- output ---------------------------------------------------------------------------------
def summary(values: list[float]) -> dict:
    q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return {
        "median": statistics.median(values),
        "q1": q[0],
        "q3": q[2],
        "n": len(values),
        "values": values,
    }


def fmt(cell: dict | None, unit: str) -> str:
    if cell is None:
        return "–"
    if "error" in cell:
        return "n/a"
    digits = 2 if cell["median"] < 100 else 0
    return f"{cell['median']:.{digits}f} ±{(cell['q3'] - cell['q1']) / 2:.{digits}f} {unit}"


def ratio(a: dict | None, b: dict | None) -> str:
    if not a or not b or "error" in a or "error" in b or not b["median"]:
        return "–"
    return f"{a['median'] / b['median']:.2f}×"


def table(rows: dict[str, dict], names: list[str]) -> str:
    head = ["case", *names, *(f"pyoci/{n}" for n in names if n != "pyoci")]
    lines = [head]
    errors = []
    for row in rows.values():
        cells = row["cells"]
        lines.append(
            [
                row["title"],
                *(fmt(cells.get(n), row["unit"]) for n in names),
                *(ratio(cells.get("pyoci"), cells.get(n)) for n in names if n != "pyoci"),
            ]
        )
        errors += [f"{row['title']} [{n}]: {c['error']}" for n, c in cells.items() if "error" in c]
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |"
        for line in lines
    ]
    out.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    if errors:
        out += ["", "n/a:", *(f"  {e}" for e in errors)]
    return "\n".join(out)


def above_floor(rows: dict[str, dict]) -> str:
    """Issue 19's goal 3: the short commands within 1 ms of the interpreter's own start.
    Wall time and CPU time (user+system, hyperfine's mean): on a shared machine the CPU
    time is the steadier of the two."""
    floor = rows.get("floor", {}).get("cells", {}).get("pyoci")
    if not floor or "median" not in floor:
        return ""
    parts = []
    for key in ("start", "state", "kill", "delete"):
        cell = rows.get(key, {}).get("cells", {}).get("pyoci")
        if cell and "median" in cell:
            parts.append(
                f"{key} {cell['median'] - floor['median']:+.2f} ms "
                f"(cpu {cell['cpu'] - floor['cpu']:+.2f})"
            )
    return (
        f"\nfloor (python -I -S -c pass): {floor['median']:.2f} ms, cpu {floor['cpu']:.2f} ms; "
        "pyoci above it: " + ", ".join(parts)
    )


def machine() -> dict:
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    versions = {}
    for tool in ("runc", "crun", "podman", "ctr", "hyperfine"):
        path = shutil.which(tool)
        if path:
            out = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
            versions[tool] = (out.stdout.splitlines() or [""])[0]
    return {
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "load_before": load,
        "python": platform.python_version(),
        "versions": versions,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


SECTIONS = ("floor", "busybox", "configs", "clients", "growth", "memory")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pyoci", default=RUNTIMES["pyoci"])
    p.add_argument("--runtimes", default="pyoci,runc,crun")
    p.add_argument("--sections", default=",".join(SECTIONS))
    p.add_argument("--runs", type=int, help="timed runs per case (default 30; --quick 3)")
    p.add_argument("--warmup", type=int, help="warmup runs per round (default 2; --quick 0)")
    p.add_argument("--rounds", type=int, default=3, help="alternations per case (default 3)")
    p.add_argument("--growth", help="container counts (default 10,100,1000; --quick 10)")
    p.add_argument("--parallel", type=int, help="containers for the 4 workers (default 200)")
    p.add_argument("--parallel-runs", type=int, default=None)
    p.add_argument("--samples", type=int, default=3, help="samples of the memory row")
    p.add_argument("--quick", action="store_true", help="a smoke pass: every row, few runs")
    p.add_argument("--json", default="bench-results.json")
    args = p.parse_args(argv)
    args.pyoci = os.path.abspath(args.pyoci)  # podman and the shim resolve it elsewhere
    args.runtimes = [
        n
        for n in args.runtimes.split(",")
        if n in RUNTIMES and (n == "pyoci" or os.access(RUNTIMES[n], os.X_OK))
    ]
    args.sections = [s for s in args.sections.split(",") if s in SECTIONS]
    args.runs = args.runs or (3 if args.quick else 30)
    args.warmup = args.warmup if args.warmup is not None else (0 if args.quick else 2)
    growth = args.growth or ("10" if args.quick else "10,100,1000")
    args.growth = [int(n) for n in growth.split(",")]
    args.parallel = args.parallel or (8 if args.quick else 200)
    args.parallel_runs = args.parallel_runs or (1 if args.quick else 2)
    if args.quick:
        args.rounds, args.samples = 1, 1
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("bench: run as root (it starts real containers)", file=sys.stderr)
        return 1
    top = Path(tempfile.mkdtemp(prefix="pyoci-bench-"))
    bench = Bench(args, top)
    info = machine()
    print(
        f"bench: {', '.join(args.runtimes)}; {args.runs} runs per case in {args.rounds} "
        f"alternating rounds; load before: {' '.join(info['load_before'])}",
        flush=True,
    )
    steps = {
        "floor": bench.floor,
        "busybox": bench.busybox,
        "configs": bench.client_configs,
        "clients": bench.clients_end_to_end,
        "growth": bench.growth,
        "memory": bench.memory,
    }
    try:
        for section in args.sections:
            print(f"[{section}]", flush=True)
            steps[section]()
    finally:
        bench.cleanup()
        shutil.rmtree(top, ignore_errors=True)
    with open("/proc/loadavg") as f:
        info["load_after"] = f.read().split()[:3]
    print()
    print(table(bench.rows, args.runtimes))
    print(f"load before/after: {' '.join(info['load_before'])} / {' '.join(info['load_after'])}")
    print(above_floor(bench.rows))
    Path(args.json).write_text(
        json.dumps(
            {"machine": info, "args": {k: v for k, v in vars(args).items()}, "rows": bench.rows},
            indent=1,
        )
    )
    print(f"raw times: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
