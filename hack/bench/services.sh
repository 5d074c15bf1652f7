#!/usr/bin/env bash
# berth's services (issue 12) against their targets, with Podman as the
# peer where it has one, alternating, medians and ratios from the same run:
#
#   1. converge: `service create --replicas 10` of an nginx image until all
#      10 are ready (the command waits for that), against ten `podman run
#      -d` of the same image; the service or the containers are removed
#      (untimed) between runs. The control plane is started first by a
#      `service ls`, timed on its own;
#   2. self-healing: `kill -9` of a replica's nginx until its replacement is
#      ready, one kill per slot of a service of max(10, RUNS) replicas (a
#      slot's first replacement is immediate, later ones back off), three
#      ways: the replacement's start (its container's StartedAt), its ready
#      status in the control plane (the task's status timestamp) and a
#      client polling `service ps`; against Podman's restart of a `--restart
#      always` container (its StartedAt), alternating;
#   3. the control plane (`berth serve`) at rest with 10 services of 3
#      replicas: VmRSS from /proc/PID/status and utime+stime over 30 s from
#      /proc/PID/stat, and `service ls` (median of 20);
#   4. one service of 100 replicas: its converge, `service ls` (median of
#      20) and the control plane at rest as in 3.
#
#   make build && hack/bench/services.sh [RUNS]      (default 10)
#
# Needs root and the Debian packages podman, runc, netavark, iptables (which
# netavark drives), curl and mmdebstrap; it installs nothing itself. The
# nginx root file system comes from hack/bench/nginx-rootfs.sh (made once,
# about a minute, cached in /var/cache/berth-demo). BERTH_BIN=PATH measures
# another berth binary (berth-runtime is taken from beside it when there).
#
# Neither side touches the user's stores, networks or configuration: berth
# gets its own --root (and so its own control plane, store and socket) with
# a berth.toml naming its own bridge, nftables table and subnet; Podman its
# own --root, --runroot, --tmpdir, containers.conf, storage.conf,
# registries.conf and network directory, with a bridge network of its own
# (DNS off). Both binaries are copied into the work directory first. At the
# end, also on failure or Ctrl-C, every service is removed, the control
# plane stopped, every container of both engines removed and the work
# directory deleted; anything berth leaves behind is reported first.
set -euo pipefail
runs=${1:-10}
here=$(cd "$(dirname "$0")/../.." && pwd)
src=${BERTH_BIN:-$here/bin/berth}

[ "$(id -u)" = 0 ] || { echo "services.sh: needs root" >&2; exit 2; }
[ -x "$src" ] || { echo "services.sh: build first: make build" >&2; exit 2; }
missing=()
for p in podman:podman runc:runc netavark:netavark iptables:iptables curl:curl mmdebstrap:mmdebstrap; do
  command -v "${p%%:*}" >/dev/null || [ -x "/usr/lib/podman/${p%%:*}" ] || missing+=("${p#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "services.sh: missing Debian packages: ${missing[*]} (apt-get install ${missing[*]})" >&2
  exit 2
fi
nginx_tar=$("$here/hack/bench/nginx-rootfs.sh")

. "$here/hack/bench/peers.sh"
bench_setup services bbs 144
sock=$work/berth/run/serve.sock
PRUN=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --network "$pnet")

warnings=()
warn() { warnings+=("$*"); echo "services.sh: WARNING: $*" >&2; }
# fail reports a command that failed, with its output, and stops.
fail() { echo "services.sh: $1 failed:" >&2; cat "$work/out" >&2; exit 1; }

# plane_pid prints the PID of the root's control plane, nothing when none runs.
plane_pid() {
  local pid
  pid=$(cat "$work/berth/serve.lock" 2>/dev/null) || return 0
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
  return 0
}

# leftovers prints what berth left on the host: mounts under its root,
# links and nftables tables with its prefix, processes naming its root.
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
    # The services first (while the control plane runs; a service command
    # would start one), then the control plane, so that nothing replaces
    # the containers removed after it.
    local pid svcs i
    pid=$(plane_pid)
    if [ -n "$pid" ]; then
      svcs=$(timeout 20 "${B[@]}" service ls --format '{{.Name}}' 2>/dev/null)
      [ -z "$svcs" ] || timeout 60 "${B[@]}" service rm $svcs >/dev/null 2>&1
      kill "$pid" 2>/dev/null
      for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null
    fi
    for id in $("${B[@]}" ps -aq --no-trunc 2>/dev/null); do "${B[@]}" rm -f -v "$id" >/dev/null 2>&1; done
    local left
    left=$(leftovers)
    if [ -n "$left" ]; then
      echo "services.sh: berth left behind after removing its services, control plane and containers:" >&2
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

# The nginx image, imported from the same tarball into both stores.
"${B[@]}" import -c 'CMD ["nginx", "-g", "daemon off;"]' -c 'EXPOSE 80' -c 'STOPSIGNAL SIGQUIT' \
  "$nginx_tar" localhost/nginx >"$work/out" 2>&1 || fail "berth import (nginx)"
"${P[@]}" info >/dev/null 2>"$work/out" || fail "podman info (overlay storage driver)"
"${P[@]}" import -q --change 'CMD ["nginx", "-g", "daemon off;"]' --change 'EXPOSE 80' --change 'STOPSIGNAL SIGQUIT' \
  "$nginx_tar" localhost/nginx >"$work/out" 2>&1 || fail "podman import (nginx)"
"${P[@]}" network create --disable-dns --subnet "$psubnet" "$pnet" >"$work/out" 2>&1 ||
  fail "podman network create"

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ms() { awk -v u="$1" 'BEGIN {printf "%.0f", u / 1000}'; }
# usec TIME prints an RFC 3339 time in microseconds since the epoch.
usec() { date -u -d "$1" +%s%6N; }

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

# wait_berth_empty waits until berth has no container left (the control
# plane stops and removes a removed service's replicas), 120 s at most.
wait_berth_empty() {
  local deadline=$((${EPOCHREALTIME/./} + 120000000))
  while [ -n "$("${B[@]}" ps -aq 2>"$work/out")" ]; do
    if [ "${EPOCHREALTIME/./}" -gt "$deadline" ]; then
      "${B[@]}" ps -a >>"$work/out" 2>&1
      fail "waiting for the replicas of removed services to go"
    fi
    sleep 0.1
  done
}

# rest SECONDS: the control plane's VmRSS, RssAnon and threads now, in
# rest_rss (KiB), rest_anon, rest_threads, and its CPU (utime+stime) over
# the next SECONDS in rest_cpu (percent of one core).
rest() {
  local pid a b hz
  pid=$(plane_pid)
  [ -n "$pid" ] || { echo "no control plane runs" >"$work/out"; fail "finding the control plane"; }
  hz=$(getconf CLK_TCK)
  a=$(sed 's/.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}')
  sleep "$1"
  b=$(sed 's/.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}')
  rest_cpu=$(awk -v t=$((b - a)) -v hz="$hz" -v s="$1" 'BEGIN {printf "%.2f", t / hz / s * 100}')
  rest_rss=$(awk '$1 == "VmRSS:" {print $2}' "/proc/$pid/status")
  rest_anon=$(awk '$1 == "RssAnon:" {print $2}' "/proc/$pid/status")
  rest_threads=$(awk '$1 == "Threads:" {print $2}' "/proc/$pid/status")
}

# ls_median N: the median time of N `service ls`, in $us.
ls_median() {
  local i
  local -a t=()
  for i in $(seq 1 "$1"); do
    timed "berth service ls" "${B[@]}" service ls
    t+=("$us")
  done
  us=$(median "${t[@]}")
}

declare -A res

# 0. The control plane's first start, by the first `service ls`; the
#    second `service ls` for comparison.
timed "berth service ls (starting the control plane)" "${B[@]}" service ls
res[start]=$us
timed "berth service ls" "${B[@]}" service ls
res[ls0]=$us
[ -S "$sock" ] || { echo "no socket $sock" >"$work/out"; fail "starting the control plane"; }
pid=$(plane_pid)
res[rss0]=$(awk '$1 == "VmRSS:" {print $2}' "/proc/$pid/status")
echo "control plane: first service ls $(ms "${res[start]}") ms (starts it), second $(ms "${res[ls0]}") ms, VmRSS ${res[rss0]} KiB" >&2

# 1. Converge: 10 nginx replicas against 10 `podman run -d`, one untimed
#    run of each first.
declare -a cvb=() cvp=()
for i in $(seq 0 "$runs"); do
  timed "berth service create --replicas 10" "${B[@]}" service create --name "conv$i" --replicas 10 localhost/nginx
  b=$us
  n=$("${B[@]}" ps -q --filter "label=berth.service.name=conv$i" | wc -l)
  [ "$n" = 10 ] || warn "berth: $n containers run for conv$i after its create returned, not 10"
  "${B[@]}" service rm "conv$i" >"$work/out" 2>&1 || fail "berth service rm conv$i"
  wait_berth_empty
  s=${EPOCHREALTIME/./}
  for j in $(seq 1 10); do
    "${P[@]}" run -d "${PRUN[@]}" --name "conv$i-$j" localhost/nginx </dev/null >"$work/out" 2>&1 ||
      fail "podman run -d conv$i-$j"
  done
  e=${EPOCHREALTIME/./}
  p=$((e - s))
  "${P[@]}" rm -f -t 0 $(seq -f "conv$i-%g" 1 10) >"$work/out" 2>&1 || fail "podman rm -f"
  [ "$i" = 0 ] && continue
  cvb+=("$b") cvp+=("$p")
  printf 'converge run %d: berth %s ms, podman %s ms\n' "$i" "$(ms "$b")" "$(ms "$p")" >&2
done
res[conv_b]=$(median "${cvb[@]}") res[conv_p]=$(median "${cvp[@]}")

# 2. Self-healing: kill -9 of one replica's nginx per slot (each slot's
#    first replacement is immediate), and of a Podman --restart always
#    container, alternating.
kills=$((runs > 10 ? runs : 10))
"${B[@]}" service create --name heal --replicas "$kills" localhost/nginx >"$work/out" 2>&1 ||
  fail "berth service create --name heal --replicas $kills"
"${P[@]}" run -d "${PRUN[@]}" --restart always --name heal localhost/nginx >"$work/out" 2>&1 ||
  fail "podman run -d --restart always"
sleep 1
declare -a hs=() hr=() ho=() hp=()
for slot in $(seq 1 "$kills"); do
  line=$("${B[@]}" ps --no-trunc --filter label=berth.service.name=heal --filter "label=berth.task.slot=$slot" \
    --format '{{.ID}} {{.Label "berth.task.id"}}' 2>"$work/out") || fail "berth ps (slot $slot)"
  [ "$(echo "$line" | wc -l)" = 1 ] && [ -n "$line" ] || { echo "slot $slot: '$line'" >>"$work/out"; fail "finding the replica of slot $slot"; }
  old=${line#* }
  pid=$("${B[@]}" inspect -f '{{.State.Pid}}' "${line% *}" 2>"$work/out") || fail "berth inspect"
  s=${EPOCHREALTIME/./}
  kill -9 "$pid"
  deadline=$((s + 30000000))
  # A client's view: `service ps` until the slot has another task, ready.
  until new=$("${B[@]}" service ps heal --no-trunc --format '{{.ID}} {{.Name}} {{.DesiredState}} {{.CurrentState}}' 2>"$work/out" |
    awk -v n="heal.$slot" -v old="$old" '$2 == n && $1 != old && $3 == "Running" && $4 == "Ready" {print $1; exit}') && [ -n "$new" ]; do
    if [ "${EPOCHREALTIME/./}" -gt "$deadline" ]; then
      "${B[@]}" service ps heal >>"$work/out" 2>&1
      fail "waiting for the replacement of slot $slot"
    fi
    sleep 0.005
  done
  e=${EPOCHREALTIME/./}
  ho+=($((e - s)))
  # The control plane's view: the task's status ("ready" and when it was
  # entered), from the API as stored; the engine's: the container's start.
  tasks=$(curl -sf --unix-socket "$sock" "http://berth/v1/services/heal/tasks") || { echo "GET tasks failed" >"$work/out"; fail "reading heal's tasks"; }
  t=${tasks#*\"id\":\"$new\"}
  t=${t#*\"status\":}
  state=${t#*\"state\":\"} state=${state%%\"*}
  ts=${t#*\"timestamp\":\"} ts=${ts%%\"*}
  [ "$state" = ready ] || { echo "task $new: state $state" >"$work/out"; fail "reading the replacement's status"; }
  hr+=($(($(usec "$ts") - s)))
  started=$("${B[@]}" inspect -f '{{.State.StartedAt}}' "heal.$slot.$new" 2>"$work/out") || fail "berth inspect heal.$slot.$new"
  hs+=($(($(usec "$started") - s)))

  old=$("${P[@]}" inspect -f '{{.State.Pid}}' heal 2>"$work/out") || fail "podman inspect heal"
  s=${EPOCHREALTIME/./}
  kill -9 "$old"
  until cur=$("${P[@]}" inspect -f '{{.State.Pid}} {{.State.Running}}' heal 2>"$work/out") &&
    [ "${cur% *}" != "$old" ] && [ "${cur% *}" != 0 ] && [ "${cur#* }" = true ]; do
    if [ "${EPOCHREALTIME/./}" -gt "$deadline" ]; then fail "waiting for Podman to restart heal"; fi
    sleep 0.005
  done
  started=$("${P[@]}" inspect -f '{{.State.StartedAt.UnixMicro}}' heal 2>"$work/out") || fail "podman inspect heal"
  hp+=($((started - s)))
  printf 'kill -9, slot %d: berth started %s ms, ready %s ms, seen by service ps %s ms; podman restarted %s ms\n' "$slot" \
    "$(ms "${hs[-1]}")" "$(ms "${hr[-1]}")" "$(ms "${ho[-1]}")" "$(ms "${hp[-1]}")" >&2
  sleep 0.5
done
res[heal_s]=$(median "${hs[@]}") res[heal_r]=$(median "${hr[@]}") res[heal_o]=$(median "${ho[@]}") res[heal_p]=$(median "${hp[@]}")
"${B[@]}" service rm heal >"$work/out" 2>&1 || fail "berth service rm heal"
"${P[@]}" rm -f -t 0 heal >"$work/out" 2>&1 || fail "podman rm -f heal"
wait_berth_empty

# waitls WANT: until `service ls` shows every service at WANT/WANT, 300 s at most.
waitls() {
  local deadline=$((${EPOCHREALTIME/./} + 300000000)) out
  while :; do
    out=$("${B[@]}" service ls --format '{{.Replicas}}' 2>"$work/out") || fail "berth service ls"
    [ -n "$out" ] && ! echo "$out" | grep -qv "^$1/$1\$" && return
    if [ "${EPOCHREALTIME/./}" -gt "$deadline" ]; then
      "${B[@]}" service ls >>"$work/out" 2>&1
      fail "waiting for the services to converge"
    fi
    sleep 0.2
  done
}

# 3. At rest with 10 services of 3 replicas (created with -d), settled for
#    10 s (past the controller's 5 s resync).
for i in $(seq 1 10); do
  "${B[@]}" service create -d --name "rest$i" --replicas 3 localhost/nginx >"$work/out" 2>&1 || fail "berth service create rest$i"
done
waitls 3
sleep 10
rest 30
res[rss30]=$rest_rss res[anon30]=$rest_anon res[thr30]=$rest_threads res[cpu30]=$rest_cpu
ls_median 20
res[ls30]=$us
echo "10 x 3 at rest: VmRSS $rest_rss KiB (anon $rest_anon KiB, $rest_threads threads), CPU $rest_cpu % of a core, service ls $(ms "$us") ms" >&2
"${B[@]}" service rm $(seq -f 'rest%g' 1 10) >"$work/out" 2>&1 || fail "berth service rm rest1..10"
wait_berth_empty

# 4. 100 replicas: converge, service ls, at rest.
timed "berth service create --replicas 100" "${B[@]}" service create --name hundred --replicas 100 localhost/nginx
res[conv100]=$us
sleep 10
ls_median 20
res[ls100]=$us
rest 30
res[rss100]=$rest_rss res[anon100]=$rest_anon res[thr100]=$rest_threads res[cpu100]=$rest_cpu
echo "100 replicas: converge $(ms "${res[conv100]}") ms, service ls $(ms "$us") ms; at rest VmRSS $rest_rss KiB (anon $rest_anon KiB, $rest_threads threads), CPU $rest_cpu % of a core" >&2
"${B[@]}" service rm hundred >"$work/out" 2>&1 || fail "berth service rm hundred"
wait_berth_empty

# The figures.
echo "berth $("${B[@]}" --version | awk '{print $NF}') vs $(podman --version) with runc $(runc --version | awk 'NR == 1 {print $3}'):" \
  "converge $runs runs, $kills kills, alternating, medians; load before the figures: $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%F)"
awk -v st="${res[start]}" -v l0="${res[ls0]}" -v r0="${res[rss0]}" -v cb="${res[conv_b]}" -v cp="${res[conv_p]}" \
  -v hs="${res[heal_s]}" -v hr="${res[heal_r]}" -v ho="${res[heal_o]}" -v hp="${res[heal_p]}" \
  -v r30="${res[rss30]}" -v a30="${res[anon30]}" -v t30="${res[thr30]}" -v c30="${res[cpu30]}" -v l30="${res[ls30]}" \
  -v c100="${res[conv100]}" -v l100="${res[ls100]}" -v r100="${res[rss100]}" -v a100="${res[anon100]}" -v t100="${res[thr100]}" \
  -v u100="${res[cpu100]}" 'BEGIN {
  f = "%-50s %12s %10s %6s   %s\n"
  printf f, "", "berth", "podman", "ratio", "target"
  printf f, "first service ls (starts the control plane)", sprintf("%.0f ms", st / 1000), "", "", sprintf("(second: %.0f ms; VmRSS %.1f MiB)", l0 / 1000, r0 / 1024)
  printf f, "converge: 10 nginx replicas (podman: 10 run -d)", sprintf("%.0f ms", cb / 1000), sprintf("%.0f ms", cp / 1000), sprintf("%.2f", cb / cp), "<= 0.20"
  printf f, "kill -9 -> replacement ready (control plane)", sprintf("%.0f ms", hr / 1000), "", "", "<= 500 ms"
  printf f, "  ... seen by a client polling service ps", sprintf("%.0f ms", ho / 1000), "", "", ""
  printf f, "kill -9 -> replacement started (podman: restart)", sprintf("%.0f ms", hs / 1000), sprintf("%.0f ms", hp / 1000), sprintf("%.2f", hs / hp), ""
  printf f, "at rest, 10 services x 3: VmRSS", sprintf("%.1f MiB", r30 / 1024), "", "", sprintf("<= 40 MB = 38.1 MiB (anon %.1f MiB, %d threads)", a30 / 1024, t30)
  printf f, "at rest, 10 services x 3: CPU over 30 s", sprintf("%.2f %%", c30), "", "", "<= 1 % of a core"
  printf f, "at rest, 10 services x 3: service ls (20)", sprintf("%.0f ms", l30 / 1000), "", "", ""
  printf f, "100 replicas: converge", sprintf("%.1f s", c100 / 1e6), "", "", ""
  printf f, "100 replicas: service ls (20)", sprintf("%.0f ms", l100 / 1000), "", "", "< 100 ms"
  printf f, "100 replicas at rest: VmRSS", sprintf("%.1f MiB", r100 / 1024), "", "", sprintf("(anon %.1f MiB, %d threads)", a100 / 1024, t100)
  printf f, "100 replicas at rest: CPU over 30 s", sprintf("%.2f %%", u100), "", "", ""
}'
for w in "${warnings[@]}"; do echo "WARNING: $w"; done
