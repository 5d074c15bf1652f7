#!/usr/bin/env bash
# berth against Podman (with runc, the same images) for what a user of the
# engine feels, alternating, medians and ratios from the same run:
#
#   1. `run --rm IMAGE true` of a busybox image, with the default network
#      (a bridge) and with --network none;
#   2. `run -d -p PORT:80 NGINX` until the first HTTP 200 reaches the host
#      (curl every 10 ms), the container removed between runs (untimed);
#   3. the memory of the per-container monitor: PSS (/proc/PID/smaps_rollup)
#      of berth's `berth-monitor` and of Podman's conmon, 5 idle containers
#      each, median per container;
#   4. the peak RSS of the `run --rm IMAGE true` command (GNU time).
#
#   make build && hack/bench/engine.sh [RUNS]      (default 10)
#
# Needs root and the Debian packages podman, runc, busybox-static, curl,
# time and mmdebstrap; it installs nothing itself. The nginx root file
# system comes from hack/bench/nginx-rootfs.sh (made once, about a minute,
# cached in /var/cache/berth-demo). BERTH_BIN=PATH measures another berth
# binary (berth-runtime is taken from beside it when there).
#
# Neither side touches the user's stores, networks or configuration: berth
# gets its own --root with a berth.toml naming its own bridge, nftables
# table and subnet; Podman its own --root, --runroot, --tmpdir,
# containers.conf, storage.conf, registries.conf and network directory,
# with a bridge network of its own (DNS off, as on Podman's default
# network). Both binaries are copied into the work directory first, so a
# rebuild of bin/ during the run changes nothing. Everything is removed at
# the end, also on failure or Ctrl-C; anything berth leaves behind that it
# should have removed itself is reported first.
set -euo pipefail
runs=${1:-10}
here=$(cd "$(dirname "$0")/../.." && pwd)
src=${BERTH_BIN:-$here/bin/berth}

[ "$(id -u)" = 0 ] || { echo "engine.sh: needs root" >&2; exit 2; }
[ -x "$src" ] || { echo "engine.sh: build first: make build" >&2; exit 2; }
missing=()
for p in podman:podman runc:runc curl:curl /usr/bin/time:time /bin/busybox:busybox-static mmdebstrap:mmdebstrap; do
  command -v "${p%%:*}" >/dev/null || missing+=("${p#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "engine.sh: missing Debian packages: ${missing[*]} (apt-get install ${missing[*]})" >&2
  exit 2
fi
nginx_tar=$("$here/hack/bench/nginx-rootfs.sh")

. "$here/hack/bench/peers.sh"
bench_setup engine bbe 248  # podman picks a free podmanN bridge for $pnet
PRUN=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)

warnings=()
warn() { warnings+=("$*"); echo "engine.sh: WARNING: $*" >&2; }
# fail reports a command that failed, with its output, and stops.
fail() { echo "engine.sh: $1 failed:" >&2; cat "$work/out" >&2; exit 1; }

# leftovers prints what berth left on the host: mounts under the work
# directory's berth root, links and nftables tables with its prefix,
# processes naming its root.
leftovers() {
  awk -v d="$work/berth/" 'index($5, d) == 1 {print "mount " $5}' /proc/self/mountinfo
  ip -o link show | awk -F': ' -v p="$prefix" 'index($2, p) == 1 {sub(/@.*/, "", $2); print "link " $2}'
  nft list tables 2>/dev/null | awk -v p="$prefix" '$3 == p {print "nftables table " $2 " " $3}'
  pgrep -f -- "--root $work/berth " | sed 's/^/process /' || true
}

cleanup() {
  set +eu
  trap - EXIT INT TERM
  if [ -x "$work/bin/berth" ]; then
    for id in $("${B[@]}" ps -aq --no-trunc 2>/dev/null); do "${B[@]}" rm -f -v "$id" >/dev/null 2>&1; done
    local left
    left=$(leftovers)
    if [ -n "$left" ]; then
      echo "engine.sh: berth left behind after removing its containers:" >&2
      echo "$left" | sed 's/^/  /' >&2
      echo "$left" | awk '$1 == "process" {print $2}' | xargs -r kill -9
      echo "$left" | awk '$1 == "link" {print $2}' | xargs -r -n1 ip link del 2>/dev/null
      nft delete table inet "$prefix" 2>/dev/null
      nft delete table ip "$prefix" 2>/dev/null
    fi
  fi
  "${P[@]}" rm -af -t 0 >/dev/null 2>&1
  "${P[@]}" network rm -f "$pnet" >/dev/null 2>&1
  # podman's and berth's overlay mounts, deepest first
  awk -v d="$work/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r |
    while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The images: busybox (Debian's static one with its applets) and nginx,
# imported from the same tarballs into both stores.
bb=$work/busybox
mkdir -p "$bb/bin" "$bb/etc" "$bb/tmp" "$bb/proc" "$bb/sys" "$bb/dev" "$bb/root"
cp /bin/busybox "$bb/bin/"
for app in $(/bin/busybox --list); do [ "$app" = busybox ] || ln -sf busybox "$bb/bin/$app"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$bb/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\n' >"$bb/etc/group"
chmod 1777 "$bb/tmp"
tar -C "$bb" -czf "$work/busybox.tar.gz" .
"${B[@]}" import -c 'CMD ["sh"]' "$work/busybox.tar.gz" localhost/busybox >"$work/out" 2>&1 || fail "berth import (busybox)"
"${B[@]}" import -c 'CMD ["nginx", "-g", "daemon off;"]' -c 'EXPOSE 80' -c 'STOPSIGNAL SIGQUIT' \
  "$nginx_tar" localhost/nginx >"$work/out" 2>&1 || fail "berth import (nginx)"
"${P[@]}" info >/dev/null 2>"$work/out" || fail "podman info (overlay storage driver)"
"${P[@]}" import -q --change 'CMD ["sh"]' "$work/busybox.tar.gz" localhost/busybox >"$work/out" 2>&1 || fail "podman import (busybox)"
"${P[@]}" import -q --change 'CMD ["nginx", "-g", "daemon off;"]' --change 'EXPOSE 80' --change 'STOPSIGNAL SIGQUIT' \
  "$nginx_tar" localhost/nginx >"$work/out" 2>&1 || fail "podman import (nginx)"
"${P[@]}" network create --disable-dns --subnet "$psubnet" "$pnet" >"$work/out" 2>&1 ||
  fail "podman network create"

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ms() { awk -v u="$1" 'BEGIN {printf "%.1f", u / 1000}'; }

# timed NAME CMD...: runs CMD, output to $work/out, and leaves its time in
# microseconds in $us. $EPOCHREALTIME adds no fork to either side.
timed() {
  local what=$1 s e
  shift
  s=${EPOCHREALTIME/./}
  "$@" </dev/null >"$work/out" 2>&1 || fail "$what ($*)"
  e=${EPOCHREALTIME/./}
  us=$((e - s))
}

# 1. run --rm true, one untimed run of each first.
bench_true() {
  local label=$1 bnet=$2 pnetarg=$3 i
  local -a tb=() tp=()
  timed "berth run --rm" "${B[@]}" run --rm $bnet localhost/busybox true
  timed "podman run --rm" "${P[@]}" run --rm "${PRUN[@]}" $pnetarg localhost/busybox true
  for i in $(seq 1 "$runs"); do
    timed "berth run --rm" "${B[@]}" run --rm $bnet localhost/busybox true; tb+=("$us")
    timed "podman run --rm" "${P[@]}" run --rm "${PRUN[@]}" $pnetarg localhost/busybox true; tp+=("$us")
    printf '%s run %d: berth %s ms, podman %s ms\n' "$label" "$i" "$(ms "${tb[-1]}")" "$(ms "${tp[-1]}")" >&2
  done
  res_b[$label]=$(median "${tb[@]}") res_p[$label]=$(median "${tp[@]}")
  if [ -n "$("${B[@]}" ps -aq)" ]; then warn "berth ps -a lists containers after run --rm ($label): $("${B[@]}" ps -a)"; fi
  if [ -n "$("${P[@]}" ps -aq)" ]; then warn "podman ps -a lists containers after run --rm ($label)"; fi
}
declare -A res_b res_p
bench_true bridge "" "--network $pnet"
bench_true none "--network none" "--network none"

# 2. run -d -p PORT:80 nginx until the first 200 from the host, each run on
#    a new free port; the container is removed (untimed) after each run.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  local p=$((20000 + RANDOM % 40000))
  until port_free "$p"; do p=$((20000 + RANDOM % 40000)); done
  echo "$p"
}
# serve NAME PORT CMD...: starts the server with CMD and polls
# http://127.0.0.1:PORT/ until it answers 200 (30 s at most); $us is the
# time from the start of CMD to that answer, $ret the time CMD took to
# return, $polls the number of requests.
serve() {
  local what=$1 port=$2 s e code deadline
  shift 2
  s=${EPOCHREALTIME/./}
  "$@" </dev/null >"$work/out" 2>&1 || fail "$what ($*)"
  e=${EPOCHREALTIME/./}
  ret=$((e - s))
  polls=0
  deadline=$((s + 30000000))
  while :; do
    polls=$((polls + 1))
    code=$(curl -s -o /dev/null -w '%{http_code}' --connect-timeout 0.5 --max-time 1 "http://127.0.0.1:$port/") || true
    [ "$code" = 200 ] && break
    if [ "${EPOCHREALTIME/./}" -gt "$deadline" ]; then
      echo "no HTTP 200 from 127.0.0.1:$port within 30 s (last status ${code:-none}); the container's logs:" >>"$work/out"
      "${logs[@]}" >>"$work/out" 2>&1
      fail "$what: serving"
    fi
    sleep 0.01
  done
  e=${EPOCHREALTIME/./}
  us=$((e - s))
}
declare -a nb=() np=() nrb=() nrp=()
for i in $(seq 0 "$runs"); do
  port=$(free_port)
  logs=("${B[@]}" logs "web$i")
  serve "berth run -d -p" "$port" "${B[@]}" run -d --name "web$i" -p "$port:80" localhost/nginx
  "${B[@]}" rm -f "web$i" >"$work/out" 2>&1 || fail "berth rm -f web$i"
  [ "$i" = 0 ] || nb+=("$us") nrb+=("$ret")
  bpolls=$polls
  port=$(free_port)
  logs=("${P[@]}" logs "web$i")
  serve "podman run -d -p" "$port" "${P[@]}" run -d "${PRUN[@]}" --network "$pnet" --name "web$i" -p "$port:80" localhost/nginx
  "${P[@]}" rm -f -t 0 "web$i" >"$work/out" 2>&1 || fail "podman rm -f web$i"
  [ "$i" = 0 ] || np+=("$us") nrp+=("$ret")
  [ "$i" = 0 ] || printf 'nginx run %d: berth %s ms (run -d %s ms, %d requests), podman %s ms (run -d %s ms, %d requests)\n' "$i" \
    "$(ms "${nb[-1]}")" "$(ms "${nrb[-1]}")" "$bpolls" "$(ms "${np[-1]}")" "$(ms "${nrp[-1]}")" "$polls" >&2
done
res_b[nginx]=$(median "${nb[@]}") res_p[nginx]=$(median "${np[@]}")
res_b[ret]=$(median "${nrb[@]}") res_p[ret]=$(median "${nrp[@]}")

# 3. Monitor memory: 5 idle busybox containers each (sleep), default
#    networks; PSS and RSS of each berth-monitor and each conmon.
declare -a pb=() pp=() rb=() rp=()
kib() { awk -v k="$2" '$1 == k ":" {print $2}' "/proc/$1/smaps_rollup"; }
for i in 1 2 3 4 5; do
  "${B[@]}" run -d --name "idle$i" localhost/busybox sleep 1000000 >"$work/out" 2>&1 || fail "berth run -d idle$i"
  "${P[@]}" run -d "${PRUN[@]}" --network "$pnet" --name "idle$i" localhost/busybox sleep 1000000 >"$work/out" 2>&1 ||
    fail "podman run -d idle$i"
done
sleep 2
for i in 1 2 3 4 5; do
  id=$("${B[@]}" inspect -f '{{.Id}}' "idle$i")
  mon=$(pgrep -f -- "container-monitor $id\$" || true)
  [ -n "$mon" ] || { echo "no berth-monitor process found for idle$i ($id)" >"$work/out"; ps -ef | grep -F "$work" >>"$work/out"; fail "finding berth-monitor"; }
  pb+=("$(kib "$mon" Pss)") rb+=("$(kib "$mon" Rss)")
  cm=$("${P[@]}" inspect -f '{{.State.ConmonPid}}' "idle$i")
  pp+=("$(kib "$cm" Pss)") rp+=("$(kib "$cm" Rss)")
done
bmon=$(ps -o args= -p "$mon")
res_b[pss]=$(median "${pb[@]}") res_p[pss]=$(median "${pp[@]}")
res_b[rss]=$(median "${rb[@]}") res_p[rss]=$(median "${rp[@]}")
for i in 1 2 3 4 5; do
  "${B[@]}" rm -f "idle$i" >"$work/out" 2>&1 || fail "berth rm -f idle$i"
  "${P[@]}" rm -f -t 0 "idle$i" >"$work/out" 2>&1 || fail "podman rm -f idle$i"
done

# 4. Peak RSS of `run --rm IMAGE true` (default network), 3 runs each.
declare -a mb=() mp=()
for i in 1 2 3; do
  /usr/bin/time -o "$work/rss" -f %M "${B[@]}" run --rm localhost/busybox true >"$work/out" 2>&1 || fail "berth run --rm (GNU time)"
  mb+=("$(tail -1 "$work/rss")")
  /usr/bin/time -o "$work/rss" -f %M "${P[@]}" run --rm "${PRUN[@]}" --network "$pnet" localhost/busybox true >"$work/out" 2>&1 ||
    fail "podman run --rm (GNU time)"
  mp+=("$(tail -1 "$work/rss")")
done
res_b[peak]=$(median "${mb[@]}") res_p[peak]=$(median "${mp[@]}")

# Anything berth should have removed by now: with no container left, its
# mounts, links, nftables table and processes should be gone.
if [ -n "$("${B[@]}" ps -aq)" ]; then warn "berth ps -a is not empty at the end: $("${B[@]}" ps -a)"; fi
left=$(leftovers)
[ -z "$left" ] || warn "with no container left, berth still has: $(echo $left)"

# The figures.
echo "berth $("${B[@]}" --version | awk '{print $NF}') vs $(podman --version) with runc $(runc --version | awk 'NR == 1 {print $3}')" \
  "and conmon $(conmon --version | awk 'NR == 1 {print $3}'), $runs runs each, alternating, medians; $(date -u +%F)"
awk -v r="$runs" \
  -v tb="${res_b[bridge]}" -v tp="${res_p[bridge]}" -v nb="${res_b[none]}" -v np="${res_p[none]}" \
  -v gb="${res_b[nginx]}" -v gp="${res_p[nginx]}" -v rb="${res_b[ret]}" -v rp="${res_p[ret]}" -v sb="${res_b[pss]}" -v sp="${res_p[pss]}" \
  -v xb="${res_b[rss]}" -v xp="${res_p[rss]}" -v mb="${res_b[peak]}" -v mp="${res_p[peak]}" 'BEGIN {
  f = "%-40s %10s %10s %6s   %s\n"
  printf f, "", "berth", "podman", "ratio", "target"
  printf f, "run --rm busybox true (bridge)", sprintf("%.1f ms", tb / 1000), sprintf("%.1f ms", tp / 1000), sprintf("%.2f", tb / tp), "<= 0.20"
  printf f, "run --rm --network none busybox true", sprintf("%.1f ms", nb / 1000), sprintf("%.1f ms", np / 1000), sprintf("%.2f", nb / np), "<= 0.20"
  printf f, "run -d -p nginx -> first HTTP 200", sprintf("%.0f ms", gb / 1000), sprintf("%.0f ms", gp / 1000), sprintf("%.2f", gb / gp), "<= 0.30 and <= 1 s"
  printf f, "  of which run -d until it returns", sprintf("%.0f ms", rb / 1000), sprintf("%.0f ms", rp / 1000), sprintf("%.2f", rb / rp), ""
  printf f, "monitor PSS per idle container (5)", sprintf("%.0f KiB", sb), sprintf("%.0f KiB", sp), sprintf("%.2f", sb / sp), "<= 1.00 (berth-monitor vs conmon)"
  printf f, "monitor RSS per idle container (5)", sprintf("%.0f KiB", xb), sprintf("%.0f KiB", xp), sprintf("%.2f", xb / xp), ""
  printf f, "peak RSS of run --rm busybox true", sprintf("%.1f MiB", mb / 1024), sprintf("%.1f MiB", mp / 1024), sprintf("%.2f", mb / mp), ""
}'
echo "berth's monitor: $bmon"
for w in "${warnings[@]}"; do echo "WARNING: $w"; done
