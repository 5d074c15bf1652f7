#!/usr/bin/env bash
# Installs what berth's build, tests, demo and benchmarks need on Debian 12.
# Safe to run again; it skips packages that are already there.
set -euo pipefail
pkgs=(gcc libc6-dev make libseccomp-dev busybox-static runc podman skopeo buildah docker-registry netavark iptables mmdebstrap uidmap bc python3 iproute2 time curl etcd-server redis-server wrk)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! command -v go >/dev/null; then
  [ -x /usr/local/go/bin/go ] && export PATH=$PATH:/usr/local/go/bin
fi
command -v go >/dev/null || { echo "install-deps: Go is missing (expected /usr/local/go)" >&2; exit 1; }
go mod download
