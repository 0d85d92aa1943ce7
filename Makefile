# gaoler's build. `sudo make demo` shows a real ban end to end; `sudo make test` runs every test,
# integration tests included (they need root: network namespaces, nftables, journald, a private bus).
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.1.0)
LDFLAGS  := -X main.version=$(VERSION)
BIN      := bin
export PATH := /usr/local/go/bin:$(PATH)

.PHONY: all build test unit bench demo demo-fleet deb deps vet fmt clean

all: build

deps:
	@bash scripts/deps.sh

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/gaolerd ./cmd/gaoler

# test runs the unit tests and, as root, the integration tests for real (GAOLER_INTEGRATION=1: a
# missing prerequisite fails instead of skipping).
test: deps
	@if [ "$$(id -u)" = 0 ]; then bash scripts/journald.sh; fi
	$(GO) vet ./...
	@if [ "$$(id -u)" = 0 ]; then export GAOLER_INTEGRATION=1; fi; \
	$(GO) test -count=1 -timeout 15m ./...

# unit runs only what needs no root.
unit:
	$(GO) test -count=1 ./...

# bench measures gaoler next to its reference in the same run: the sshd filter and the engine
# (per core), the journal reader against a bare go-systemd loop, bulk bans against one `nft -f`
# file, and the daemon end to end: catch-up CPU against the bare loop, journal-to-kernel ban
# latency against a reader blocking in sd_journal_wait, the hot reader's CPU against a bare loop
# reading the journal header every millisecond, a 200,000-offender flood (bans in the kernel, peak
# memory, the bus), idle CPU and memory. It prints a Markdown report and writes it with a PNG chart
# of the main figures to bench/ (scripts/bench.sh). Root only.
bench: deps
	GO=$(GO) bash scripts/bench.sh

demo: deps build
	bash scripts/demo.sh

# demo-fleet shows fleet mode: three namespaced hosts, a three-node JetStream cluster, one gaolerd
# each; a ban on h1 reaches the others, h2's ignoreip wins, an unban on h1 is lifted everywhere.
demo-fleet: deps build
	$(GO) build -o $(BIN)/ ./internal/natsnode
	bash scripts/demo-fleet.sh

# deb builds dist/gaoler_<version>_<arch>.deb with dpkg-buildpackage (see packaging/debian) and runs
# lintian on it.
deb: deps
	bash packaging/build-deb.sh --lintian

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN) dist
