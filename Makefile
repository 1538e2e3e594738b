# drum: the two entry points are `make demo` and `make test`; both install what is
# missing first (scripts/setup.sh).
export PATH := $(PATH):/usr/local/go/bin
GO ?= go
BIN := bin/drum

.PHONY: all setup build demo test vet clean

all: build

setup:
	scripts/setup.sh

build:
	$(GO) build -o $(BIN) ./cmd/drum

demo: setup build
	scripts/demo.sh

test: setup
	scripts/test.sh

vet:
	$(GO) vet ./...

clean:
	rm -rf bin
