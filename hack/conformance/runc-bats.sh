#!/usr/bin/env bash
# Runs runc's own integration suite (runc v1.1.5's tests/integration/*.bats, from the Go module
# proxy) against an OCI runtime with runc's command line, and prints a table per file.
#
#   runc-bats.sh RUNTIME [FILE.bats…]     default: every file that runs on this machine
#
# The suite's images come from this machine: busybox from Debian's busybox-static, and for
# hooks.bats a Debian minbase root made with mmdebstrap. Needs root, go, bats, jq, gawk, script
# (util-linux), gcc; it installs bats, jq and gawk when missing. Cached in $RB_CACHE
# (default ~/.cache/berth-runc-bats). Ends with "N passed, N failed, N skipped".
#
# A copy of /work/shared/conformance/runc-bats.sh whose busybox image has the
# modes of the real one: the shared one packs its root directory 0700 (mktemp's
# mode) and /tmp 0755, so every test that runs the container as another user
# (cwd.bats, some of exec.bats) fails with "executable file not found" under
# runc as well.
set -uo pipefail
runtime=${1:?usage: runc-bats.sh RUNTIME [FILE.bats…]}; shift
runtime=$(command -v "$runtime" || readlink -f "$runtime")
[ -x "$runtime" ] || { echo "runc-bats: $runtime is not an executable" >&2; exit 2; }
cache=${RB_CACHE:-$HOME/.cache/berth-runc-bats}; it="$cache/runc/tests/integration"
export PATH=$PATH:/usr/local/go/bin

for p in bats jq gawk; do command -v $p >/dev/null || need="${need:-} $p"; done
[ -z "${need:-}" ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null 2>&1

prepare() {
  local tmp src r
  tmp=$(mktemp -d)
  (cd "$tmp" && go mod init probe >/dev/null 2>&1 && go mod download github.com/opencontainers/runc@v1.1.5) || return 1
  src=$(go env GOMODCACHE)/github.com/opencontainers/runc@v1.1.5
  rm -rf "$cache" && mkdir -p "$cache" && cp -r "$src" "$cache/runc" && chmod -R u+w "$cache/runc" && rm -rf "$tmp" || return 1
  chmod +x "$it"/*.sh  # module zips keep no run bits
  (cd "$cache/runc" && go build -mod=mod -o contrib/cmd/recvtty/recvtty ./contrib/cmd/recvtty &&
    go build -mod=mod -o contrib/cmd/seccompagent/seccompagent ./contrib/cmd/seccompagent) || return 1
  # busybox: the static binary and a link per applet (never a link named busybox to itself)
  r=$(mktemp -d); mkdir -p "$r/bin" "$r/etc" "$r/root" "$r/tmp"
  chmod 755 "$r"; chmod 1777 "$r/tmp"  # as in the busybox image, not mktemp's 0700
  cp /bin/busybox "$r/bin/busybox"
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$r/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$r/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
  tar -C "$r" -cJf "$it/testdata/busybox-amd64.tar.xz" . && rm -rf "$r" || return 1
  # debian (hooks.bats): a minbase root from the machine's own apt sources
  shared=$HOME/.cache/runc-bats/runc/tests/integration/testdata/debian-amd64.tar.xz
  if [ -s "$shared" ]; then
    cp "$shared" "$it/testdata/"  # the shared harness's, made the same way
  elif command -v mmdebstrap >/dev/null; then
    mmdebstrap --variant=minbase --format=tar bookworm - 2>/dev/null | xz -T0 -1 >"$it/testdata/debian-amd64.tar.xz" ||
      rm -f "$it/testdata/debian-amd64.tar.xz"
  fi
  touch "$cache/ready"
}
[ -f "$cache/ready" ] || prepare || { echo "runc-bats: could not prepare the suite" >&2; exit 2; }

# Files that need what these machines lack (criu, systemd cgroups, sshfs, rootless set-up).
skip_files="checkpoint.bats cgroup_delegation.bats mounts_sshfs.bats seccomp-notify-compat.bats"
files=("$@")
if [ ${#files[@]} -eq 0 ]; then
  for f in "$it"/*.bats; do f=$(basename "$f"); grep -qw "$f" <<<"$skip_files" || files+=("$f"); done
fi
out=$(mktemp -d); chmod 755 "$out"; tp=0; tf=0; ts=0  # tests run as other users need to enter it
printf '%-22s %5s %5s %5s\n' file pass fail skip
for f in "${files[@]}"; do
  (cd "$it" && RUNC="$runtime" TMPDIR="$out" timeout -k 10 300 script -qefc "bats --tap $f" /dev/null) >"$out/$f.tap" 2>&1
  p=$(grep -cE '^ok [0-9]+ ' "$out/$f.tap" | tr -d '\r'); s=$(grep -cE '^ok [0-9]+ .*# skip' "$out/$f.tap")
  n=$(grep -cE '^not ok [0-9]+ ' "$out/$f.tap"); p=$((p - s))
  printf '%-22s %5d %5d %5d\n' "$f" "$p" "$n" "$s"
  grep -E '^not ok [0-9]+ ' "$out/$f.tap" | tr -d '\r' | sed 's/^/    /'
  tp=$((tp + p)); tf=$((tf + n)); ts=$((ts + s))
done
echo "TAP output: $out"
echo "$tp passed, $tf failed, $ts skipped"
