# drum: the two entry points are `make demo` and `make test`; both install what is
# missing first (scripts/setup.sh).
export PATH := $(PATH):/usr/local/go/bin
GO ?= go
BIN := bin/drum

.PHONY: all setup build demo test vet clean bench bench-quick

all: build

setup:
	scripts/setup.sh

build:
	$(GO) build -o $(BIN) ./cmd/drum

demo: setup build
	scripts/demo.sh

test: setup
	scripts/test.sh

# Benchmarks against a Flask+gunicorn baseline (scripts/bench.sh; installs flask and
# gunicorn through apt on first use). Results go to scripts/bench/results/.
bench:
	scripts/bench.sh

bench-quick:
	scripts/bench.sh --quick

vet:
	$(GO) vet ./...

clean:
	rm -rf bin
