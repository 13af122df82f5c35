#!/usr/bin/env bash
# Runs every test. As root it first makes sure the services the tests need are
# running (dockerd); etcd servers, BIRD and lab dockerds are started by the
# tests themselves on loopback or inside network namespaces they create.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/bin:/usr/sbin:/sbin:$PATH"
export CALICO_BIN="$PWD/bin/calico"
if [ "$(id -u)" -eq 0 ]; then
  hack/dockerd.sh start
fi
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt would change: $unformatted" >&2; exit 1; fi
go vet ./...
# -p 1: root tests share the host's kernel (Docker, /run/docker/plugins);
# each package's tests still run in parallel inside it where they can.
go test -count=1 -p 1 -timeout 25m "$@" ./...
