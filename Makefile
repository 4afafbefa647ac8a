# lodge's build. `make` builds bin/lodged, bin/lodge-monitor, bin/lodge-shim
# (C, static: beside each running container), bin/lodge-exec (C, static:
# runs each docker exec), bin/lodge-wait (C, static: the foreground lodged
# once its daemon answers), bin/lodge-usernet,
# bin/lodge-keeper (static: lodged's namespace-holding stages),
# bin/lodge-buildkitd (BuildKit, started by lodged on the first buildx build),
# bin/lodge-init (static: it runs inside containers) and bin/lodge.
GO      ?= go
CC      ?= cc
# go.podman.io/storage's drivers lodge does not use need C libraries; seccomp
# makes libcontainer load the default profile (libseccomp, through cgo).
TAGS    := exclude_graphdriver_btrfs,exclude_graphdriver_devicemapper,containers_image_openpgp,seccomp
export GOFLAGS := -tags=$(TAGS)
COMMIT  ?= $(shell git describe --always --dirty --exclude="*" 2>/dev/null)
LDFLAGS := -X github.com/lodge-containers/lodge/version.Commit=$(COMMIT)

# make install: no root needed. PREFIX is ~/.local for a user, /usr/local
# for root; DESTDIR stages a package. lodge and lodged go to bin/, their
# helpers to libexec/lodge/ (lodged finds them there), shell completions
# where bash, zsh and fish look for a user's or the system's.
ifeq ($(shell id -u),0)
PREFIX  ?= /usr/local
BASHCOMP = $(PREFIX)/share/bash-completion/completions
ZSHCOMP  = $(PREFIX)/share/zsh/site-functions
FISHCOMP = $(PREFIX)/share/fish/vendor_completions.d
else
PREFIX  ?= $(HOME)/.local
BASHCOMP = $(PREFIX)/share/bash-completion/completions
ZSHCOMP  = $(PREFIX)/share/zsh/site-functions
FISHCOMP = $(HOME)/.config/fish/completions
endif
HELPERS := lodge-monitor lodge-shim lodge-exec lodge-wait lodge-usernet lodge-init lodge-buildkitd lodge-keeper

.PHONY: all build test torture conformance lint lint-errcheck bench clean install uninstall

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/lodge-monitor ./cmd/lodge-monitor
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/lodged ./cmd/lodged
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/lodge-usernet ./cmd/lodge-usernet
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/lodge-buildkitd ./cmd/lodge-buildkitd
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/lodge ./cmd/lodge
	CGO_ENABLED=0 $(GO) build -o bin/lodge-init ./cmd/lodge-init
	$(CC) -std=c11 -O2 -Wall -static -o bin/lodge-shim shim/c/shim.c shim/c/json.c shim/c/proc.c
	$(CC) -std=c11 -O2 -Wall -static -o bin/lodge-exec shim/c/exec.c shim/c/json.c shim/c/proc.c
	$(CC) -std=c11 -O2 -Wall -static -o bin/lodge-wait shim/c/wait.c
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o bin/lodge-keeper ./cmd/lodge-keeper

# Every test; as root it sets the machine up and runs them as a test user.
test:
	hack/test.sh

# The torture suite alone (tests/torture_*_test.go, TestTorture*): kill -9
# rounds during store changes, concurrent clients, abandoned streams, the
# daemon's stages and the monitors. LODGE_TORTURE_ROUNDS (default 50) and
# LODGE_TORTURE_CONTAINERS (default 20) size it; under CI (.ci/run),
# hack/test.sh runs it with the rest at 10 rounds.
torture:
	hack/test.sh torture

# critest, the Kubernetes CRI validation suite, against rootless lodged as
# the test user, with its images served offline; FOCUS=regexp for a part.
# The README's CRI section lists the tests that cannot pass and why.
conformance:
	hack/critest.sh $(FOCUS)

# Speed and memory beside Docker rootless and Podman; BENCH=run for one group.
bench:
	hack/bench.sh

# errcheck, pinned; `go run` takes it from the module proxy into the module
# cache, so nothing needs installing. hack/errcheck.exclude lists the calls
# whose error is ignored on purpose, each with its reason.
ERRCHECK := github.com/kisielk/errcheck@v1.30.0
# The packages errcheck keeps free of dropped errors (hack/test.sh runs the
# same list under CI). Tests are not checked yet.
LINT_ERRCHECK := ./api/... ./image/... ./build/... ./buildkitd/... ./netns/... ./cgroupv2/... \
	./rootdir/... ./paths/... ./proc/... ./errdefs/... ./storage/... ./cmd/lodge/... ./daemon/... \
	./runtime/... ./userns/... ./cmd/lodged/... ./cmd/lodge-keeper/... ./cmd/lodge-monitor/... \
	./cmd/lodge-buildkitd/... ./cmd/lodge-init/... ./cmd/lodge-usernet/... ./internal/... ./hack/... \
	./shim/... ./cri/...

lint: lint-errcheck
	@test -z "$$(gofmt -l .)" || { gofmt -l .; exit 1; }
	$(GO) vet ./...

lint-errcheck:
	$(GO) run $(ERRCHECK) -ignoretests -exclude hack/errcheck.exclude $(LINT_ERRCHECK)

install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/libexec/lodge $(DESTDIR)$(BASHCOMP) $(DESTDIR)$(ZSHCOMP) $(DESTDIR)$(FISHCOMP)
	install -m 0755 bin/lodge bin/lodged $(DESTDIR)$(PREFIX)/bin/
	for h in $(HELPERS); do install -m 0755 bin/$$h $(DESTDIR)$(PREFIX)/libexec/lodge/; done
	bin/lodge completion bash > $(DESTDIR)$(BASHCOMP)/lodge
	bin/lodge completion zsh > $(DESTDIR)$(ZSHCOMP)/_lodge
	bin/lodge completion fish > $(DESTDIR)$(FISHCOMP)/lodge.fish

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/lodge $(DESTDIR)$(PREFIX)/bin/lodged
	rm -rf $(DESTDIR)$(PREFIX)/libexec/lodge
	rm -f $(DESTDIR)$(BASHCOMP)/lodge $(DESTDIR)$(ZSHCOMP)/_lodge $(DESTDIR)$(FISHCOMP)/lodge.fish

clean:
	rm -rf bin
