GO ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/berth-dev/berth/internal/cli/runtimecli.Version=$(VERSION)
# Static binaries start faster (no dynamic loader); netgo/osusergo keep glibc's
# NSS out of the static link.
STATIC := -tags netgo,osusergo -ldflags '$(LDFLAGS) -linkmode external -extldflags "-static"'

.PHONY: build test conformance bench clean

build:
	$(GO) build -trimpath $(STATIC) -o bin/berth ./cmd/berth
	$(GO) build -trimpath $(STATIC) -o bin/berth-runtime ./cmd/berth-runtime

# The team's copy of the OCI validation runner lives in ../shared/conformance;
# hack/conformance holds a copy for checkouts without it.
CONFORMANCE := $(firstword $(wildcard ../shared/conformance/runtime-tools.sh) hack/conformance/runtime-tools.sh)

test: build
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...
	$(CONFORMANCE) --required $(CURDIR)/bin/berth-runtime

conformance: build
	$(CONFORMANCE) --required $(CURDIR)/bin/berth-runtime

bench: build
	hack/bench/runtime.sh

clean:
	rm -rf bin
