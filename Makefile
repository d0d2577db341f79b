# Conveniences; the README's commands work without make.
.PHONY: test build dev fuzz bench

test:
	bash scripts/test.sh

# VERSION is what the binaries report ('keyraft version', sys/health): the
# checkout's tag when it has one, else the default in internal/version.
VERSION ?= $(shell git describe --tags --dirty 2>/dev/null)
LDFLAGS := $(if $(VERSION),-X github.com/keyraft/keyraft/internal/version.Version=$(VERSION))

build:
	go build -ldflags "$(LDFLAGS)" -o bin/ ./cmd/...
	go build -o bin/keyraft-plugin-chacha ./plugins/examples/chacha

dev:
	go run ./cmd/keyraft server -dev

# Each fuzz target for a short while (FUZZTIME=1m make fuzz for longer).
FUZZTIME ?= 20s
fuzz:
	bash scripts/fuzz.sh $(FUZZTIME)

bench:
	go test -run '^$$' -bench . -benchtime 3s ./fsm ./keys ./transport

# Load runs of a real dev server in the default configuration (the
# side-by-side harness's workloads, plus batches of 1,000): req/s,
# p50/p99 and the server's CPU per request (DURATION=30s for longer).
.PHONY: bench-load
bench-load:
	bash scripts/bench.sh

# How much audit sinks (a file + an acked socket to 'keyraft audit
# receive') slow 32 clients on a dev server, healthy and with the
# collector stalled, and whether every event arrived exactly once.
.PHONY: bench-sinks
bench-sinks:
	mkdir -p bin && go build -o bin/keyraft ./cmd/keyraft && go build -o bin/loadgen ./tools/loadgen
	python3 scripts/bench-sinks.py --bin main=bin/keyraft --loadgen bin/loadgen --framing-option acked \
	    --collector-cmd 'bin/keyraft audit receive -listen 127.0.0.1:{port} -o {out}'

# Regenerates the plugin contracts' Go code (plugins/proto/pluginv1) from
# plugins/proto/*.proto. Needs protoc (apt-get install protobuf-compiler);
# the two Go generators are installed at pinned versions into bin/.
.PHONY: proto
proto:
	@command -v protoc >/dev/null || { echo "protoc not found: apt-get install protobuf-compiler" >&2; exit 1; }
	GOBIN=$(CURDIR)/bin GOFLAGS= go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
	GOBIN=$(CURDIR)/bin GOFLAGS= go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
	PATH="$(CURDIR)/bin:$$PATH" protoc -I plugins/proto \
		--go_out=. --go_opt=module=github.com/keyraft/keyraft \
		--go-grpc_out=. --go-grpc_opt=module=github.com/keyraft/keyraft \
		plugins/proto/storage.proto plugins/proto/crypto.proto
