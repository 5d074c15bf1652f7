GO ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/berth-dev/berth/internal/cli.Version=$(VERSION)
# Static binaries start faster (no dynamic loader); netgo/osusergo keep glibc's
# NSS out of the static link.
STATIC := -tags netgo,osusergo -ldflags '$(LDFLAGS) -linkmode external -extldflags "-static"'

.PHONY: build test conformance bench clean

build:
	$(GO) build -trimpath $(STATIC) -o bin/berth ./cmd/berth
	$(GO) build -trimpath $(STATIC) -o bin/berth-runtime ./cmd/berth-runtime

test: build
	$(GO) vet ./...
	$(GO) test -count=1 ./...

conformance: build
	../shared/conformance/runtime-tools.sh --required $(CURDIR)/bin/berth-runtime

bench: build
	hack/bench/runtime.sh

clean:
	rm -rf bin
