#!/usr/bin/env bash
# Autoscaling (issue 14), RUNS times each, medians:
#
#   1. CPU: a service of busy loops (nginx's image, sh) at --cpu-percent 50
#      with a CPU reservation of 0.1, idle at 1 replica; from the moment its
#      load starts (a file its replicas watch appears), the time to the
#      autoscaler's first scale-out decision (the decision's own time in the
#      autoscaler's status) and to all the replicas it asked for being
#      ready (`service ls` polled every 20 ms). The HPA's defaults need
#      15–60 s to the decision; the target is 5 s.
#   2. Cold start: an nginx service at --min 0 (http-rps trigger) that went
#      to zero replicas; curl's time to the first 200 through its published
#      port, against `berth run -d -p` of the same image until its first 200
#      (curl every 10 ms), alternating. The target is 0.5 s.
#
#   make build && hack/bench/autoscale.sh [RUNS]      (default 5)
#
# Needs root and the Debian packages curl, python3 and mmdebstrap (for the
# nginx root file system, hack/bench/nginx-rootfs.sh). berth runs in a
# --root of its own (bridge, nftables table and subnet of its own);
# everything is removed at the end, also on failure.
set -euo pipefail
runs=${1:-5}
here=$(cd "$(dirname "$0")/../.." && pwd)
src=${BERTH_BIN:-$here/bin/berth}
[ "$(id -u)" = 0 ] || { echo "autoscale.sh: needs root" >&2; exit 2; }
[ -x "$src" ] || { echo "autoscale.sh: build first: make build" >&2; exit 2; }
for p in curl python3 mmdebstrap; do
  command -v "$p" >/dev/null || { echo "autoscale.sh: missing $p (apt-get install $p)" >&2; exit 2; }
done
nginx_tar=$("$here/hack/bench/nginx-rootfs.sh")

. "$here/hack/bench/peers.sh"
bench_setup autoscale bas 148

fail() { echo "autoscale.sh: $1 failed:" >&2; cat "$work/out" >&2; exit 1; }
cleanup() {
  set +eu
  trap - EXIT INT TERM
  local pid
  pid=$(cat "$work/berth/serve.lock" 2>/dev/null)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    "${B[@]}" service rm burn web >/dev/null 2>&1
    sleep 3
    kill "$pid"; sleep 1; kill -9 "$pid" 2>/dev/null
  fi
  for id in $("${B[@]}" ps -aq --no-trunc 2>/dev/null); do "${B[@]}" rm -f "$id" >/dev/null 2>&1; done
  nft delete table ip "$prefix" 2>/dev/null
  ip -o link show | awk -F': ' -v p="$prefix" 'index($2, p) == 1 {sub(/@.*/, "", $2); print $2}' | xargs -r -n1 ip link del 2>/dev/null
  awk -v d="$work/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r |
    while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
now_us() { echo "${EPOCHREALTIME/./}"; }
# until_true SECONDS WHAT CMD...: runs CMD every 20 ms until it succeeds.
until_true() {
  local limit=$(($(now_us) + $1 * 1000000)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    [ "$(now_us)" -lt "$limit" ] || { "${B[@]}" service ls >"$work/out" 2>&1; fail "waiting for $what"; }
    sleep 0.02
  done
}
wanted() { [ "$("${B[@]}" service inspect -f '{{.spec.replicas}}' "$1")" "$2" "$3" ]; }
all_ready() {
  local r
  r=$("${B[@]}" service ls --filter "name=$1" --format '{{.Replicas}}')
  [ "${r%/*}" = "${r#*/}" ] && [ "${r%/*}" -gt 1 ]
}
running() { [ "$("${B[@]}" ps -q --filter "label=berth.service.name=$1" | wc -l)" = "$2" ]; }

"${B[@]}" import -c 'CMD ["nginx", "-g", "daemon off;"]' -c 'EXPOSE 80' -c 'STOPSIGNAL SIGQUIT' \
  "$nginx_tar" localhost/nginx >"$work/out" 2>&1 || fail "berth import"

# 1. CPU.
mkdir "$work/ctl"
"${B[@]}" service create --name burn --reserve-cpu 0.1 -v "$work/ctl:/ctl" --stop-grace-period 1s localhost/nginx \
  sh -c 'while :; do while [ -e /ctl/busy ]; do :; done; sleep 0.2; done' >"$work/out" 2>&1 || fail "service create burn"
"${B[@]}" service autoscale burn --min 1 --max 4 --cpu-percent 50 --scale-down-stabilization 2s >"$work/out" 2>&1 ||
  fail "service autoscale burn"
declare -a decide=() ready=()
for i in $(seq 1 "$runs"); do
  until_true 60 "burn back at 1 replica" wanted burn = 1
  until_true 60 "burn's other replicas to go" running burn 1
  sleep 2
  start=$(now_us)
  touch "$work/ctl/busy"
  until_true 30 "burn to scale out" wanted burn -gt 1
  until_true 30 "burn's replicas to be ready" all_ready burn
  end=$(now_us)
  rm "$work/ctl/busy"
  # The first decision after the start, from the autoscaler's status.
  at=$("${B[@]}" service inspect -f '{{json .autoscaler.status.decisions}}' burn | python3 -c '
import json, sys, datetime
start = int(sys.argv[1])
for d in json.load(sys.stdin):
    t = datetime.datetime.fromisoformat(d["time"].replace("Z", "+00:00")).timestamp()
    if d["to"] > d["from"] and t * 1e6 >= start:
        print(int(t * 1e6)); break' "$start")
  [ -n "$at" ] || { "${B[@]}" service autoscale burn >"$work/out" 2>&1; fail "finding burn's scale-out decision"; }
  decide+=($((at - start))) ready+=($((end - start)))
  echo "run $i: load → decision $(((at - start) / 1000)) ms, → $("${B[@]}" service inspect -f '{{.spec.replicas}}' burn) replicas ready $(((end - start) / 1000)) ms" >&2
done
"${B[@]}" service rm burn >"$work/out" 2>&1 || fail "service rm burn"

# 2. Cold start.
sport=$(freeport 18580)
pport=$(freeport $((sport + 1)))
"${B[@]}" service create --name web -p "$sport:80" localhost/nginx >"$work/out" 2>&1 || fail "service create web"
"${B[@]}" service autoscale web --min 0 --max 2 --cooldown 1s --trigger http-rps,target=100 >"$work/out" 2>&1 ||
  fail "service autoscale web"
declare -a cold=() plain=()
for i in $(seq 1 "$runs"); do
  until_true 60 "web to go to zero" wanted web = 0
  until_true 60 "web's replica to go" running web 0
  read -r code secs < <(curl -s -o /dev/null -w '%{http_code} %{time_total}\n' --max-time 10 "http://127.0.0.1:$sport/")
  [ "$code" = 200 ] || { echo "HTTP $code" >"$work/out"; fail "the first request to web at zero"; }
  cold+=("$(awk -v s="$secs" 'BEGIN {printf "%d", s * 1e6}')")

  start=$(now_us)
  "${B[@]}" run -d --name "plain$i" -p "$pport:80" localhost/nginx >"$work/out" 2>&1 || fail "berth run -d -p"
  until curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$pport/"; do sleep 0.01; done
  plain+=($(($(now_us) - start)))
  "${B[@]}" rm -f "plain$i" >"$work/out" 2>&1 || fail "berth rm -f"
  echo "run $i: from zero to the first 200 $((${cold[-1]} / 1000)) ms; berth run -d -p to its first 200 $((${plain[-1]} / 1000)) ms" >&2
done

ms() { awk -v u="$1" 'BEGIN {printf "%.0f", u / 1000}'; }
echo
echo "| $(date -u +%Y-%m-%d), berth $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo '?'), $runs runs | median | target |"
echo "| --- | --- | --- |"
echo "| CPU load → first scale-out decision | $(ms "$(median "${decide[@]}")") ms | ≤ 5 s (HPA defaults: 15–60 s) |"
echo "| CPU load → the new replicas ready | $(ms "$(median "${ready[@]}")") ms | |"
echo "| from zero replicas to the first 200 (nginx) | $(ms "$(median "${cold[@]}")") ms | ≤ 500 ms |"
echo "| \`berth run -d -p\` of nginx to its first 200 | $(ms "$(median "${plain[@]}")") ms | |"
