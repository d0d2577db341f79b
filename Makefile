# Conveniences; the README's commands work without make.
.PHONY: test build dev fuzz bench

test:
	bash scripts/test.sh

build:
	go build -o bin/keyraft ./cmd/keyraft

dev:
	go run ./cmd/keyraft server -dev

# Each fuzz target for a short while (FUZZTIME=1m make fuzz for longer).
FUZZTIME ?= 20s
fuzz:
	bash scripts/fuzz.sh $(FUZZTIME)

bench:
	go test -run '^$$' -bench . -benchtime 3s ./fsm ./keys ./transport
