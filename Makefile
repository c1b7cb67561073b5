# brig: the two commands of the README, and the pieces they are made of.
#   make demo   build brig and run a jailed Python program (the main job)
#   make test   the whole test suite, as CI runs it
# Both install what they need on a fresh Debian machine first.

GO      ?= $(shell command -v go || echo /usr/local/go/bin/go)
PYTHON  := /usr/bin/python3
export PATH := $(dir $(GO)):$(PATH)
# Every build output goes to one directory outside the sources (gitignored
# build/ by default; BUILD=DIR puts it elsewhere): the binaries, the VM's
# kernel and test binaries.
BUILD   ?= $(CURDIR)/build
export BRIG_VM_CACHE ?= $(BUILD)/vm

PREFIX  ?= /usr/local

.PHONY: demo test check deps test-deps build install vet unit race fuzz examples-test clients-test vm-test bench clean

deps:
	@missing=""; \
	pkg-config --exists libseccomp 2>/dev/null || missing="$$missing libseccomp-dev"; \
	command -v pkg-config >/dev/null || missing="$$missing pkg-config"; \
	command -v gcc >/dev/null || missing="$$missing gcc"; \
	test -x $(PYTHON) || missing="$$missing python3"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# What only the tests need: Debian's prometheus (promtool for the alert
# rules' unit tests, a real Prometheus that must see the OOM alert fire).
test-deps: deps
	@command -v promtool >/dev/null || { echo "installing: prometheus"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }

# The CLI is linked statically: a `brig run` then starts without the dynamic
# loader or the shared libc and libseccomp (0.87x the time of a dynamically
# linked brig run, A/B). osusergo,netgo: the pure-Go user and DNS lookups,
# since glibc's need its shared NSS modules at run time. bench/compare.sh and
# the tests (hostile.BuildCLI) build it the same way.
# grpcnotrace: gRPC (the sandboxd mode's transport) without
# golang.org/x/net/trace and the templates it pulls in, which brig never
# uses: a smaller binary and less package initialisation on every brig run.
# The commit goes into `brig version` (Go's own VCS stamp may be off: GOFLAGS).
COMMIT  := $(shell git rev-parse --short=12 HEAD 2>/dev/null)
CLI_FLAGS := -tags osusergo,netgo,grpcnotrace -ldflags='-extldflags=-static -X main.builtCommit=$(COMMIT)'

build: deps
	$(GO) build $(CLI_FLAGS) -o $(BUILD)/brig ./cmd/brig

# brig on PATH: one static file, nothing else to install.
install: build
	install -D -m 0755 $(BUILD)/brig $(DESTDIR)$(PREFIX)/bin/brig

demo: build
	$(BUILD)/brig run --memory 256M --timeout 10s -- $(PYTHON) -c 'import os, socket, sys; print("hello from a jail: uid", os.getuid(), "pid", os.getpid(), "host", socket.gethostname(), "python", sys.version.split()[0])'
	$(BUILD)/brig check

vet: deps
	$(GO) vet ./...
	@bad=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$bad" ]; then echo "gofmt needed: $$bad"; exit 1; fi

unit: deps
	$(GO) test -p 1 -count=1 -timeout 20m ./...

# The packages that run goroutines: jail and its runtime internal/supervisor,
# session, cgroup, the audit log, the metrics, the egress proxy, serve,
# sandboxd.
# -p 1: packages one at a time, so CPU-limit tests do not compete for the 2 cores.
# -short and BRIG_TIME_SCALE: the race-built supervisor runs several times
# slower and the race runtime's shadow memory inflates its RSS, so the soak,
# the 500-jail test and the CLI ways of the hostile corpus (all run above,
# without -race) are skipped here, and time bounds are stretched. (The jail's
# own stages are C and not race-built.)
race: deps
	BRIG_TIME_SCALE=5 $(GO) test -p 1 -count=1 -race -short -timeout 20m ./jail/ ./session/ ./internal/supervisor/ ./cgroup/ ./audit/ ./metrics/ ./egress/ ./serve/ ./sandboxd/

vm-test: deps
	bash vm/setup.sh
	GO=$(GO) bash vm/run-tests.sh

# The Python client of brig serve (standard library only), against a real
# brig serve on a unix socket and loopback TCP.
clients-test: build
	cd clients/python && BRIG=$(BUILD)/brig $(PYTHON) -m unittest -v test_brig_client
	$(GO) test -count=1 -run '^$$' ./cmd/brig/ >/dev/null

# The Open Interpreter adapter, a Python client of `brig session --jsonl`.
examples-test: build
	cd examples/openinterpreter && BRIG=$(BUILD)/brig $(PYTHON) -m unittest -v test_brig_languages
	@# The adapter's brig processes leave the jails' empty parent cgroups, as any
	@# supervisor does; cmd/brig's TestMain (no test run) removes them.
	$(GO) test -count=1 -run '^$$' ./cmd/brig/ >/dev/null

# Every parser of outside input, fuzzed briefly: CLI sizes, durations and binds,
# OCI seccomp profiles, the session's cell-stream splitter, the JSONL
# requests and their line reader, the audit log's verifier and line reader,
# brig serve's config, its templates' network keys, request bodies and
# request ids, the egress policy's destinations, the egress proxy's request
# reader, the metrics endpoint's token check and the sandboxd REST path and
# query.
# A failing input is written to <pkg>/testdata/fuzz/<Fuzz...>/ and
# from then on runs as a seed in every `go test`.
# Budgets are counts of inputs, not durations: with a duration, Go 1.26's fuzz
# coordinator can fail a target with a bare "context deadline exceeded" at the
# deadline (golang/go#75804, fixed in Go 1.27; it reddened a CI run here). Each
# count is ~5-8 s on this 2-core machine; FUZZSCALE multiplies them all.
FUZZSCALE ?= 1
fuzz: deps
	$(GO) test -run '^$$' -fuzz '^FuzzParseSize$$' -fuzztime $$((100000 * $(FUZZSCALE)))x ./cmd/brig/
	$(GO) test -run '^$$' -fuzz '^FuzzParseDuration$$' -fuzztime $$((100000 * $(FUZZSCALE)))x ./cmd/brig/
	$(GO) test -run '^$$' -fuzz '^FuzzParseBind$$' -fuzztime $$((100000 * $(FUZZSCALE)))x ./cmd/brig/
	$(GO) test -run '^$$' -fuzz '^FuzzParseRequest$$' -fuzztime $$((200000 * $(FUZZSCALE)))x ./cmd/brig/
	$(GO) test -run '^$$' -fuzz '^FuzzLineReader$$' -fuzztime $$((100000 * $(FUZZSCALE)))x ./cmd/brig/
	$(GO) test -run '^$$' -fuzz '^FuzzParseOCI$$' -fuzztime $$((200000 * $(FUZZSCALE)))x ./seccomp/
	$(GO) test -run '^$$' -fuzz '^FuzzParseRule$$' -fuzztime $$((100000 * $(FUZZSCALE)))x ./egress/
	$(GO) test -run '^$$' -fuzz '^FuzzReadRequest$$' -fuzztime $$((100000 * $(FUZZSCALE)))x ./egress/
	$(GO) test -run '^$$' -fuzz '^FuzzParseConfig$$' -fuzztime $$((50000 * $(FUZZSCALE)))x ./serve/
	$(GO) test -run '^$$' -fuzz '^FuzzRequestBodies$$' -fuzztime $$((100000 * $(FUZZSCALE)))x ./serve/
	$(GO) test -run '^$$' -fuzz '^FuzzRequestID$$' -fuzztime $$((50000 * $(FUZZSCALE)))x ./serve/
	$(GO) test -run '^$$' -fuzz '^FuzzTemplateNetwork$$' -fuzztime $$((30000 * $(FUZZSCALE)))x ./serve/
	$(GO) test -run '^$$' -fuzz '^FuzzCellStream$$' -fuzztime $$((50000 * $(FUZZSCALE)))x ./session/
	$(GO) test -run '^$$' -fuzz '^FuzzCellStreamLateNonce$$' -fuzztime $$((50000 * $(FUZZSCALE)))x ./session/
	$(GO) test -run '^$$' -fuzz '^FuzzVerify$$' -fuzztime $$((50000 * $(FUZZSCALE)))x ./audit/
	$(GO) test -run '^$$' -fuzz '^FuzzAuditLineReader$$' -fuzztime $$((100000 * $(FUZZSCALE)))x ./audit/
	$(GO) test -run '^$$' -fuzz '^FuzzAppendRecord$$' -fuzztime $$((100000 * $(FUZZSCALE)))x ./audit/
	$(GO) test -run '^$$' -fuzz '^FuzzHandlerToken$$' -fuzztime $$((50000 * $(FUZZSCALE)))x ./metrics/
	$(GO) test -run '^$$' -fuzz '^FuzzParseFileRequest$$' -fuzztime $$((20000 * $(FUZZSCALE)))x ./sandboxd/

test: test-deps vet unit race fuzz examples-test clients-test vm-test

# The fast tier for day-to-day work: vet, gofmt and the tests with -short
# (no soak, no CLI builds of the hostile corpus, no VM).
check: vet
	$(GO) test -p 1 -count=1 -short -timeout 10m ./...

bench: build
	$(GO) test -run '^$$' -bench . -benchtime 200x ./jail/ ./session/

clean:
	rm -rf $(BUILD)

# The hostile corpus (testdata/hostile) through the Go API, `brig run` as root
# and `brig run` as nobody, with the automatic limiter and with rlimits:
# one line per payload, then "N passed, M failed".
# HOSTILE_ARGS go to brig-hostile (e.g. -run ex_fork_bomb), HOSTILE_VIA and
# HOSTILE_LIMITERS to internal/hostile/run.sh.
.PHONY: hostile soak soak-serve
hostile: build
	$(GO) build -o $(BUILD)/brig-hostile ./cmd/brig-hostile
	BUILD=$(BUILD) sh internal/hostile/run.sh $(HOSTILE_ARGS)

# 2000 mixed runs, 8 at once, through one long-lived supervisor: one summary line.
SOAK_RUNS ?= 2000
SOAK_PARALLEL ?= 8
soak: deps
	$(GO) build -o $(BUILD)/brig-hostile ./cmd/brig-hostile
	$(BUILD)/brig-hostile soak -runs $(SOAK_RUNS) -parallel $(SOAK_PARALLEL)

# brig serve under 16 clients of two tenants (one with tight quotas):
# mixed runs, contexts, files, bombs and disconnects, every answer checked,
# 429s counted apart, nothing left after SIGTERM, the server's RSS flat.
# One summary line. Not part of `make test`: run it on a quiet machine.
SOAK_SERVE_REQUESTS ?= 20000
SOAK_SERVE_CLIENTS ?= 16
soak-serve: build
	$(GO) build -o $(BUILD)/brig-hostile ./cmd/brig-hostile
	$(BUILD)/brig-hostile soak-serve -brig $(BUILD)/brig -clients $(SOAK_SERVE_CLIENTS) -requests $(SOAK_SERVE_REQUESTS)
