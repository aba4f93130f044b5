# scstd — build, run and test.
#
#   make run    build the daemon and serve examples/quickstart.hcl on 127.0.0.1:3260
#               (make run PORT=3261 for another port)
#   make test   install the test tools, lint, unit tests (-race), end-to-end tests
#   make test-vm the dev_disk tests: a QEMU guest with SCSI disks (minutes under TCG)
#
#   make bench  measure scstd beside tgtd and the loopback ceiling: one table of
#               issue 13's figures, raw figures in .state/bench (docs/benchmarks.md)
#
# Everything else: make build | deps | vm-kernel | lint | fuzz | bench-profile | man | deb | clean

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

GO          ?= go
BIN         := bin/scstd
STATE       := .state
QUICKSTART  := examples/quickstart.hcl
QS_TARGET   := iqn.2026-11.org.example:quickstart
PORT        ?= 3260
MAN_DIR     := bin/man

# The version, commit and state of the tree, stamped into every build
# (`scstd version`); scripts/version.sh says how the version is derived.
VERSION     ?= $(shell scripts/version.sh)
GIT_COMMIT  := $(shell git rev-parse HEAD 2>/dev/null)
GIT_MODIFIED := $(shell [ -n "$$(git status --porcelain --untracked-files=no 2>/dev/null)" ] && echo true || echo false)
LDFLAGS     := -X main.version=$(VERSION) -X main.commit=$(GIT_COMMIT) -X main.modified=$(GIT_MODIFIED)

# Debian packages the end-to-end tests and the benchmark drive the daemon
# with; ansible runs the example playbook (examples/ansible) in the tests;
# the dev_disk VM tests (make test-vm) boot a QEMU guest with busybox;
# iperf3 measures the benchmark's loopback ceiling; etcd-server (etcd 3.4)
# holds the cluster state of the gateway tests (internal/etcdtest runs it).
APT_PACKAGES := libiscsi-bin qemu-utils qemu-block-extra tgt open-isns-server open-isns-utils ansible \
                qemu-system-x86 busybox-static iperf3 etcd-server
# Pinned to the version the team's package list names.
STATICCHECK_VERSION := v0.8.2

GOBIN_DIR   := $(shell $(GO) env GOPATH)/bin
STATICCHECK := $(shell command -v staticcheck 2>/dev/null || { test -x $(GOBIN_DIR)/staticcheck && echo $(GOBIN_DIR)/staticcheck; })

E2E_PKG      := ./test/e2e/...
E2E_TIMEOUT  ?= 40m
UNIT_TIMEOUT ?= 15m
FUZZTIME     ?= 5s

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all build run deps test lint fmt-check vet staticcheck unit e2e test-vm vm-kernel fuzz bench bench-profile man deb clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/scstd

# run serves the quickstart example. With another PORT it serves a copy
# rendered into .state/ (whose relative disk path resolves to the same
# image, since .state/ and examples/ are both at the top), and the daemon
# watches that copy instead of the example.
run: build
	@mkdir -p $(STATE)/quickstart
	@case "$(PORT)" in ''|*[!0-9]*) echo "make run: PORT must be a number, got '$(PORT)'"; exit 2;; esac
	@config=$(QUICKSTART); sock=$(STATE)/scstd.sock; \
	if [ "$(PORT)" != 3260 ]; then \
		config=$(STATE)/quickstart-$(PORT).hcl; sock=$(STATE)/scstd-$(PORT).sock; \
		sed 's/127\.0\.0\.1:3260/127.0.0.1:$(PORT)/g' $(QUICKSTART) >$$config; \
	fi; \
	echo "scstd: serving $$config on 127.0.0.1:$(PORT) (Ctrl-C stops it). From another terminal:"; \
	echo "  iscsi-ls iscsi://127.0.0.1:$(PORT)"; \
	echo "  iscsi-inq iscsi://127.0.0.1:$(PORT)/$(QS_TARGET)/0"; \
	echo "  $(BIN) status -admin-socket $$sock"; \
	exec $(BIN) run -config $$config -admin-socket $$sock

# man writes the manual pages (scstd.8, scstd-COMMAND.8) from the command
# table; read one with `man -l bin/man/scstd-import.8`.
man: build
	$(BIN) man $(MAN_DIR)

# deb builds bin/scstd_VERSION_ARCH.deb with dpkg-deb (scripts/deb.sh).
deb:
	VERSION=$(VERSION) scripts/deb.sh bin

# deps installs what the tests need, and only what is missing.
deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "deps: installing$$missing"; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -q; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi
	@if [ -z "$(STATICCHECK)" ]; then \
		echo "deps: installing staticcheck $(STATICCHECK_VERSION)"; \
		$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) \
			|| echo "deps: staticcheck not available; lint runs without it"; \
	fi

test: deps
	@$(MAKE) --no-print-directory lint
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory e2e

lint: fmt-check vet staticcheck

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.state/*')); \
	if [ -n "$$out" ]; then echo "gofmt: these files need formatting (run gofmt -w):"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# staticcheck is looked up again here: deps may have just installed it.
staticcheck:
	@sc=$$(command -v staticcheck || { test -x $(GOBIN_DIR)/staticcheck && echo $(GOBIN_DIR)/staticcheck; } || true); \
	if [ -n "$$sc" ]; then echo "$$sc ./..."; "$$sc" ./...; else echo "staticcheck: not installed, skipped"; fi

# unit runs every package except the end-to-end tests, with the race detector.
unit:
	$(GO) test -race -timeout $(UNIT_TIMEOUT) $$($(GO) list ./... | grep -v '/test/e2e')

# e2e builds the daemon once and drives it with libiscsi and qemu; no -race
# (iscsi-test-cu alone sends several hundred thousand commands). -count=1:
# the daemon they run is a binary (and, in the VM, a build from source) that
# go test's cache does not key on, so a cached pass could hide a change.
e2e: build deb
	SCSTD_BIN=$(CURDIR)/$(BIN) SCSTD_DEB=$$(ls -t $(CURDIR)/bin/scstd_$(VERSION)_*.deb | head -n1) \
		$(GO) test -count=1 -timeout $(E2E_TIMEOUT) -v $(E2E_PKG)

# vm-kernel fetches Debian's kernel package into .state/vm (not committed)
# and extracts the guest kernel and modules the dev_disk tests boot.
vm-kernel:
	scripts/vm-kernel.sh $(VM_KERNEL)

# test-vm runs the dev_disk pass-through tests (build tag vm): scstd in a
# QEMU guest (TCG) in front of virtio-scsi disks, driven from this host by
# libiscsi and qemu-io. About five minutes on two cores, so not in `make
# test`; .ci/run calls it afterwards.
VM_KERNEL := $(CURDIR)/.state/vm/kernel
VM_TIMEOUT ?= 40m
test-vm: deps vm-kernel
	$(GO) vet -tags vm ./test/e2e
	@sc=$$(command -v staticcheck || { test -x $(GOBIN_DIR)/staticcheck && echo $(GOBIN_DIR)/staticcheck; } || true); \
	if [ -n "$$sc" ]; then "$$sc" -tags vm ./test/e2e; fi
	SCSTD_VM_KERNEL=$(VM_KERNEL) $(GO) test -count=1 -tags vm -timeout $(VM_TIMEOUT) -v -run 'TestDevDisk' ./test/e2e

fuzz:
	FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

# bench prints issue 13's figures side by side in one run (cmd/scstd-bench;
# docs/benchmarks.md says what each is and how it is measured) and keeps
# the raw figures in .state/bench/. BENCH_QUICK=1 runs each case once for
# a few seconds; BENCH_ROUNDS, BENCH_CASES, BENCH_VARIANTS and the others
# are listed in cmd/scstd-bench/main.go.
bench: deps build
	$(GO) build -o bin/scstd-bench ./cmd/scstd-bench
	SCSTD_BIN=$(CURDIR)/$(BIN) BENCH_OUT=$(CURDIR)/$(STATE)/bench bin/scstd-bench

# bench-profile profiles the daemon's 4 KiB reads and writes and 1 MiB
# reads (pprof, and perf and strace where they work) into
# .state/bench/profile-*/ and prints the costs per I/O.
bench-profile: deps build
	$(GO) build -o bin/scstd-bench ./cmd/scstd-bench
	SCSTD_BIN=$(CURDIR)/$(BIN) BENCH_OUT=$(CURDIR)/$(STATE)/bench BENCH_PROFILE=1 bin/scstd-bench

clean:
	rm -rf bin $(STATE)
