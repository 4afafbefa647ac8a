# lodge's build. `make` builds bin/lodged, bin/lodge-monitor, bin/lodge-usernet,
# bin/lodge-buildkitd (BuildKit, started by lodged on the first buildx build),
# bin/lodge-init (static: it runs inside containers) and bin/lodge.
GO      ?= go
# go.podman.io/storage's drivers lodge does not use need C libraries; seccomp
# makes libcontainer load the default profile (libseccomp, through cgo).
TAGS    := exclude_graphdriver_btrfs,exclude_graphdriver_devicemapper,containers_image_openpgp,seccomp
export GOFLAGS := -tags=$(TAGS)
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/lodge-containers/lodge/version.Version=$(VERSION)

.PHONY: all build test lint bench clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/lodge-monitor ./cmd/lodge-monitor
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/lodged ./cmd/lodged
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/lodge-usernet ./cmd/lodge-usernet
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/lodge-buildkitd ./cmd/lodge-buildkitd
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/lodge ./cmd/lodge
	CGO_ENABLED=0 $(GO) build -o bin/lodge-init ./cmd/lodge-init

# Every test; as root it sets the machine up and runs them as a test user.
test:
	hack/test.sh

# Speed and memory beside Docker rootless and Podman; BENCH=run for one group.
bench:
	hack/bench.sh

lint:
	@test -z "$$(gofmt -l .)" || { gofmt -l .; exit 1; }
	$(GO) vet ./...

clean:
	rm -rf bin
