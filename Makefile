# pyoci — two commands do everything on a fresh Debian 12 machine (as root):
#   make install   system packages, the venv, the bundles, and one container run
#   make test      lint + every test (unit, integration; client suites when their tools exist)

PYTHON      ?= /usr/bin/python3
VENV        := .venv
BIN         := $(VENV)/bin
PYOCI       := $(BIN)/pyoci
# busybox-static: the bundles' rootfs; runc, crun, hyperfine: references for tests and bench;
# gcc, libcap-dev, python3-dev: python-prctl builds from source, gcc the sealed exec helper;
# libc6-dev: the security tests build static attacker programs; libseccomp2: seccomp at run time;
# golang-github-containers-common: podman's default seccomp profile, a test fixture;
# uidmap: newuidmap/newgidmap for rootless multi-range mappings;
# podman, conmon, catatonit, containerd, docker.io: the real clients of tests/clients;
# containernetworking-plugins (bridge, host-local, loopback) and util-linux (nsenter, unshare):
# the pods' network and the private namespaces of containerd's CRI (tools/cri-containerd.py).
APT_PACKAGES := busybox-static runc crun hyperfine time gcc libc6-dev libcap-dev python3-dev python3-venv \
                libseccomp2 iproute2 procps golang-github-containers-common uidmap \
                podman conmon catatonit containerd docker.io containernetworking-plugins util-linux

HELPER      := pyoci/linux/pyoci-exec
HELPER_CFLAGS := -Os -static -nostdlib -ffreestanding -fno-builtin -fno-stack-protector \
                 -fno-asynchronous-unwind-tables -Wall -Wextra -Werror \
                 -Wl,--build-id=none -Wl,-z,noexecstack -s

.PHONY: install system venv helper bundles demo test unit integration lint format bench clean \
        conformance

install: system venv helper bundles demo

system:
	@if dpkg -s $(APT_PACKAGES) >/dev/null 2>&1; then \
		echo "system packages: all present"; \
	else \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(APT_PACKAGES); \
	fi

venv: $(BIN)/.installed

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/python tools/mklauncher.py $(VENV) .
	touch $@

# The sealed exec helper (pyoci/linux/exechelper.c says why): no libc, a few KB.
helper: $(HELPER)

$(HELPER): pyoci/linux/exechelper.c
	gcc $(HELPER_CFLAGS) -o $@ $<

bundles: bundles/busybox/rootfs/bin/busybox

bundles/busybox/rootfs/bin/busybox: tools/mkrootfs.sh
	tools/mkrootfs.sh bundles/busybox/rootfs

demo: venv helper bundles
	@echo "--- pyoci run of bundles/busybox:"
	$(PYOCI) run --bundle bundles/busybox pyoci-demo-$$$$

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format:
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

unit:
	$(BIN)/python -m pytest tests/unit -q

integration:
	$(BIN)/python -m pytest tests/integration -q

test: lint helper
	$(BIN)/python -m pytest -q -rs

# The OCI runtime conformance suite (tests/conformance) against any runc-compatible binary:
#   make conformance RUNTIME=runc|crun|pyoci|/path/to/binary
# prints the per-section table, writes build/conformance-<name>.json; non-zero if a clause fails.
RUNTIME     ?= pyoci

conformance: venv helper bundles
	$(BIN)/python -m pytest tests/conformance -p tests.conformance.report -q -rfE \
		--runtime $(RUNTIME) --conformance-json build/conformance-$(notdir $(RUNTIME)).json

# One table of ratios (tools/bench.py says what each row is); raw times in bench-results.json.
# ~5 minutes; a shorter pass: make bench BENCH_ARGS="--growth 10,100 --runs 15"
BENCH_ARGS  ?=

bench: venv helper bundles
	$(BIN)/python tools/bench.py --pyoci $(PYOCI) --json bench-results.json $(BENCH_ARGS)

clean:
	rm -rf bundles/*/rootfs build *.egg-info .pytest_cache .ruff_cache bench-results.json $(HELPER)
	find . -name __pycache__ -prune -exec rm -rf {} +
