# mycel's commands. `make help` lists the targets; README.md explains them.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
# The checks run in the order listed and stop at the first failure, even
# under make -j.
.NOTPARALLEL:
.DEFAULT_GOAL := help

# run: arguments for `mycel`.
ARGS ?= daemon
# test: how long each fuzz target runs.
FUZZTIME ?= 10s
# Fuzzing runs on Go 1.27.3, which the go command fetches from the module
# proxy (once, ~76 MB): Go 1.26's fuzz coordinator can fail a target with
# "context deadline exceeded" as -fuzztime ends, without any crasher
# (golang/go#75804, fixed in 1.27). Everything else runs on the machine's Go.
FUZZ_TOOLCHAIN ?= go1.27.3
# bench: -benchtime of each feed benchmark run, and how many runs the
# table takes medians over (fsync latency on a shared disk drifts a lot).
BENCHTIME ?= 1s
BENCHRUNS ?= 3
# Packages that must build for the browser node (GOOS=js GOARCH=wasm): the
# protocol core, which imports neither libp2p nor badger.
WASM_PKGS := ./feed/ ./feed/memstore/ ./feed/feedpb/ ./auth/ ./auth/authpb/ ./node/space/ ./node/space/spacepb/ ./node/replication/ ./node/replication/syncpb/ ./node/signin/ ./node/messages/ ./ephemeral/ ./ephemeral/ephemeralpb/ ./internal/pbwire/
# How bin/core.wasm is built: no symbol table or DWARF, no local paths, no
# VCS stamp (the same bytes as webui/build.mjs's dist/core.wasm).
WASM_FLAGS := -trimpath -buildvcs=false -ldflags='-s -w'
# The browser node's core, gzip -9, fails make wasm (and CI) above this.
WASM_GZIP_BUDGET := 2000000
# build: version stamped into bin/mycel.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

# The browser the web UI's tests drive (TESTING.md, "Real browsers").
CHROMIUM ?= /usr/bin/chromium

.PHONY: help run build webui hashes chromium nftables test fmt-check vet test-race fuzz wasm bench

help: ## list the targets
	@awk 'BEGIN { FS = ":.*## " } /^[a-z-]+:.*## / { printf "  %-10s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

# run builds the binary and runs it rather than `go run`: go run exits 1
# when it was sent SIGINT, whatever the program's status, so Ctrl-C on a
# daemon that stopped cleanly ended in "make: *** [run] Error 1".
run: build ## build bin/mycel, then run it with ARGS (default: daemon); Ctrl-C stops it cleanly
	bin/mycel $(ARGS)

build: webui ## build bin/mycel, web UI included
	go build -ldflags "-X main.version=$(VERSION)" -o bin/mycel ./cmd/mycel

# webui builds every file the web app serves into webui/dist/ for go:embed
# (build.mjs: the bundles, core.wasm, wasm_exec.js and hashes.txt; the
# build is reproducible). npm ci runs only when package-lock.json is newer
# than node_modules.
webui: webui/node_modules/.package-lock.json ## build the web app (TypeScript, esbuild, the wasm core) into webui/dist/
	cd webui && node_modules/.bin/tsc --noEmit -p . && node build.mjs

hashes: webui ## the SHA-256 of each file the relay and the daemon serve of the web app (webui/dist/hashes.txt)
	@cat webui/dist/hashes.txt

webui/node_modules/.package-lock.json: webui/package.json webui/package-lock.json
	cd webui && npm ci --no-audit --no-fund

chromium: ## install Debian's chromium for the browser tests when it is missing
	@test -x $(CHROMIUM) || { echo "chromium: installing (apt-get)"; \
		sudo=; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
		$$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

nftables: ## install Debian's nftables (nft) for the relay's hole punching test when it is missing
	@command -v nft >/dev/null || test -x /usr/sbin/nft || { echo "nftables: installing (apt-get)"; \
		sudo=; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
		$$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nftables; }

test: webui chromium nftables fmt-check vet test-race fuzz wasm ## every check CI runs, failing fast
	@echo "make test: all checks passed"

fmt-check: ## fail if gofmt would change a file
	@unformatted=$$(gofmt -l .); \
	if [ -n "$$unformatted" ]; then \
		echo "gofmt would change these files (run gofmt -w):"; \
		echo "$$unformatted"; \
		exit 1; \
	fi

vet: ## go vet ./...
	go vet ./...

test-race: ## all tests with the race detector, crash tests included
	go test -race -count=1 -timeout 30m ./...

fuzz: ## every fuzz target for FUZZTIME (default 10s), one at a time
	@n=0; \
	for pkg in $$(go list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' ./...); do \
		names=$$(go test -list '^Fuzz' "$$pkg" | awk '/^Fuzz/'); \
		for name in $$names; do \
			echo "fuzz: $$pkg $$name for $(FUZZTIME)"; \
			GOTOOLCHAIN=$(FUZZ_TOOLCHAIN) go test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) "$$pkg"; \
			n=$$((n + 1)); \
		done; \
	done; \
	echo "fuzz: $$n targets passed"

# There is no `make proto`: the .proto files are the schemas of record, and
# the Go codecs beside them are written by hand over protowire (without
# protobuf's reflection runtime: core.wasm 2.72 -> 1.75 MB gzip); a schema change
# is made in both, pinned by the package's tests (internal/pbwire).
wasm: ## the protocol core builds for GOOS=js GOARCH=wasm; bin/core.wasm (the browser node's core) and its gzip size
	GOOS=js GOARCH=wasm go build $(WASM_PKGS)
	@mkdir -p bin
	GOOS=js GOARCH=wasm go build $(WASM_FLAGS) -o bin/core.wasm ./webui/wasm/
	@gz=$$(gzip -9c bin/core.wasm | wc -c); \
	echo "bin/core.wasm: $$(wc -c < bin/core.wasm) bytes, $$gz gzip -9 (budget $(WASM_GZIP_BUDGET): DESIGN.md, The browser node)"; \
	if [ "$$gz" -gt $(WASM_GZIP_BUDGET) ]; then echo "bin/core.wasm: over its budget of $(WASM_GZIP_BUDGET) bytes gzip -9" >&2; exit 1; fi

bench: ## feed benchmarks, BENCHRUNS runs of BENCHTIME, into bench.out and a table of medians
	for i in $$(seq $(BENCHRUNS)); do go test -run '^$$' -bench . -benchtime $(BENCHTIME) ./feed/; done | tee bench.out
	go run ./internal/benchtable < bench.out
