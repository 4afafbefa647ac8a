# lodge's build. `make` builds bin/lodged and bin/lodge.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/lodge-containers/lodge/version.Version=$(VERSION)

.PHONY: all build test lint clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/lodged ./cmd/lodged
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/lodge ./cmd/lodge

# Every test; as root it sets the machine up and runs them as a test user.
test:
	hack/test.sh

lint:
	@test -z "$$(gofmt -l .)" || { gofmt -l .; exit 1; }
	$(GO) vet ./...

clean:
	rm -rf bin
