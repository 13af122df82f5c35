#!/usr/bin/env bash
# Installs the Debian packages the project needs, only when something is missing.
# Idempotent; runs `apt-get update` once before installing. Usage: hack/deps.sh [test|demo|build]
set -euo pipefail
need=()
have_cmd() { command -v "$1" >/dev/null 2>&1; }
want() { # want CMD PACKAGE
  if ! have_cmd "$1" && ! [ -x "$1" ]; then need+=("$2"); fi
}
want ip iproute2
want nft nftables
want conntrack conntrack
want dockerd docker.io
want bird bird2
want birdc bird2
want /bin/busybox busybox-static
want etcd etcd-server
want etcdctl etcd-client
want iperf3 iperf3
want sockperf sockperf # hack/bench-datapath.sh: TCP request/response latency
want ufw ufw # the e2e test of a Docker host with ufw active
want docker-compose docker-compose # compose v1 (Debian 12): the docker-compose step of TestDockerPlugin
want nsenter util-linux
want unshare util-linux
want modprobe kmod
want ps procps
want chromium chromium # headless browser for the web view test (internal/ui)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
# dedupe
mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
echo "deps: installing ${need[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing packages (${need[*]}) and not root; install them or run as root" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# The etcd-server package starts a system etcd on 127.0.0.1:2379; tests and the demo
# run their own, so stop the packaged one where a service manager started it.
if have_cmd systemctl && systemctl is-active --quiet etcd 2>/dev/null; then systemctl stop etcd || true; fi
