# calico-docker. Quick start (as root): `make demo`, `make test`.
SHELL := /bin/bash
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GO ?= go
LDFLAGS := -s -w -X github.com/calico-docker/calico/internal/cli.Version=$(VERSION)
BIN := bin/calico
STATICCHECK_VERSION ?= 2026.1
export PATH := $(CURDIR)/bin:/usr/local/go/bin:/usr/sbin:/sbin:$(PATH)

.PHONY: all build test test-unit deps lint bench bench-quick image plugin demo demo-down clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/calico

deps:
	@hack/deps.sh

# Every test: pure ones everywhere, and as root also the netns, nftables,
# etcd-cluster, dockerd and BIRD ones. Root-only tests skip with a message otherwise.
test: deps build
	hack/test.sh

# The unit tier: every package's unprivileged tests, in a few minutes, as any
# user. CALICO_UNIT=1 makes root-only tests (netns, nftables, routes, dockerd,
# BIRD) skip even as root (testutil.RequireRoot); -short skips the slow
# unprivileged ones (etcd clusters, binary builds, labs).
test-unit:
	CALICO_UNIT=1 $(GO) test -short -count=1 ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt: $$out"; exit 1; fi
	$(GO) vet ./...
	@command -v staticcheck >/dev/null || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	PATH=$$PATH:$$($(GO) env GOPATH)/bin staticcheck ./...

bench: deps build
	hack/bench.sh

# The managed (v2) Docker plugin calico/calico:latest on the local dockerd
# (swarm needs it; see docs/docker.md).
plugin: build
	$(BIN) plugin create --replace

# A few minutes: the data path side by side (3 short rounds), endpoint ->
# kernel latency, node RSS; ends with "NAME VALUE" summary lines.
bench-quick: deps build
	hack/bench-quick.sh

# The node image calico/node:<version>, FROM scratch with the static binary.
image: build
	$(BIN) node image

demo: deps build
	hack/demo.sh

demo-down: build
	$(BIN) lab down --name demo

clean:
	rm -rf bin

# Fuzz every target for FUZZTIME each (their seed corpora, in the code and
# under testdata/fuzz/, run as ordinary tests in `make test`). A crash found
# is written to the package's testdata/fuzz/<Target>/: commit it with the fix.
# Each new interesting input is minimised before the fuzzer moves on, for up to
# 60 s by default; our manifests are large, so minimising took the whole run
# (FuzzDecodeAndValidate showed 0 execs/s): FUZZMINTIME bounds it.
FUZZTIME ?= 20s
FUZZMINTIME ?= 1s
FUZZ_TARGETS := internal/selector:FuzzParseEvaluate internal/api:FuzzDecodeAndValidate internal/plugin/docker:FuzzPluginRequest
.PHONY: fuzz test-reliability
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; fn=$${t##*:}; \
	  echo "== $$fn in ./$$pkg for $(FUZZTIME)"; \
	  $(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINTIME) ./$$pkg; done

# The lab fault and isolation suite in full (needs root, dockerd, busybox);
# `make test` runs its short form. See RELIABILITY.md.
test-reliability: deps build
	CALICO_BIN=$(CURDIR)/$(BIN) CALICO_RELIABILITY=full $(GO) test -count=1 -v -timeout 60m ./test/reliability/
