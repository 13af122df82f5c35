#!/usr/bin/env bash
# Starts the host's dockerd when it is not running (CI starts from no services).
set -euo pipefail
case "${1:-start}" in
start)
  if docker version >/dev/null 2>&1; then exit 0; fi
  if ! command -v dockerd >/dev/null; then echo "dockerd not installed (run hack/deps.sh)" >&2; exit 1; fi
  mkdir -p /var/log/calico-docker
  # Use the "vfs"-free default; iptables is kept on so the default bridge works.
  nohup dockerd >/var/log/calico-docker/dockerd.log 2>&1 &
  for _ in $(seq 1 600); do
    if docker version >/dev/null 2>&1; then exit 0; fi
    sleep 0.1
  done
  echo "dockerd did not start within 60s; see /var/log/calico-docker/dockerd.log" >&2
  tail -20 /var/log/calico-docker/dockerd.log >&2
  exit 1
  ;;
esac
