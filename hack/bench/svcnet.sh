#!/usr/bin/env bash
# Service networking (issue 13): HTTP throughput and p99 latency of a
# 3-replica nginx service through its virtual IP and through its published
# port, against one replica's own address, and Podman's published port of
# one nginx container for reference; wrk from the host, ROUNDS rounds
# alternating the four targets, medians. Then how long a replica killed
# with kill -9 stays in the balancer.
#
#   make build && hack/bench/svcnet.sh [ROUNDS]      (default 5)
#
# Needs root and the Debian packages wrk, podman, runc, netavark, iptables,
# curl and mmdebstrap. berth runs in a --root of its own (bridge, nftables
# table and subnet of its own), Podman with its own storage, configuration
# and network; everything is removed at the end, also on failure.
set -euo pipefail
rounds=${1:-5}
here=$(cd "$(dirname "$0")/../.." && pwd)
src=${BERTH_BIN:-$here/bin/berth}
[ "$(id -u)" = 0 ] || { echo "svcnet.sh: needs root" >&2; exit 2; }
[ -x "$src" ] || { echo "svcnet.sh: build first: make build" >&2; exit 2; }
for p in wrk podman runc iptables curl mmdebstrap; do
  command -v "$p" >/dev/null || { echo "svcnet.sh: missing $p (apt-get install $p)" >&2; exit 2; }
done
nginx_tar=$("$here/hack/bench/nginx-rootfs.sh")

. "$here/hack/bench/peers.sh"
bench_setup svcnet bsn 146

fail() { echo "svcnet.sh: $1 failed:" >&2; cat "$work/out" >&2; exit 1; }
cleanup() {
  set +eu
  trap - EXIT INT TERM
  local pid
  pid=$(cat "$work/berth/serve.lock" 2>/dev/null)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    "${B[@]}" service rm web >/dev/null 2>&1
    sleep 2
    kill "$pid"; sleep 1; kill -9 "$pid" 2>/dev/null
  fi
  for id in $("${B[@]}" ps -aq --no-trunc 2>/dev/null); do "${B[@]}" rm -f "$id" >/dev/null 2>&1; done
  nft delete table ip "$prefix" 2>/dev/null
  ip -o link show | awk -F': ' -v p="$prefix" 'index($2, p) == 1 {sub(/@.*/, "", $2); print $2}' | xargs -r -n1 ip link del 2>/dev/null
  "${P[@]}" rm -af -t 0 >/dev/null 2>&1
  "${P[@]}" network rm -f "$pnet" >/dev/null 2>&1
  awk -v d="$work/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r |
    while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bport=$(freeport 18480)
pport=$(freeport $((bport + 1)))

"${B[@]}" import -c 'CMD ["nginx", "-g", "daemon off;"]' -c 'EXPOSE 80' -c 'STOPSIGNAL SIGQUIT' \
  "$nginx_tar" localhost/nginx >"$work/out" 2>&1 || fail "berth import"
"${B[@]}" service create --name web --replicas 3 -p "$bport:80" localhost/nginx >"$work/out" 2>&1 || fail "berth service create"
vip=$("${B[@]}" service inspect -f '{{(index .status.virtualIPs 0).addr}}' web 2>"$work/out") || fail "berth service inspect"
one=$("${B[@]}" ps -q --filter label=berth.service.name=web --filter label=berth.task.slot=1)
direct=$("${B[@]}" inspect -f '{{.NetworkSettings.IPAddress}}' "$one" 2>"$work/out") || fail "berth inspect"

"${P[@]}" import -q --change 'CMD ["nginx", "-g", "daemon off;"]' --change 'STOPSIGNAL SIGQUIT' \
  "$nginx_tar" localhost/nginx >"$work/out" 2>&1 || fail "podman import"
"${P[@]}" network create --disable-dns --subnet "$psubnet" "$pnet" >"$work/out" 2>&1 || fail "podman network create"
"${P[@]}" run -d --network "$pnet" --ulimit nofile=4096:4096 --ulimit nproc=1024:1024 -p "$pport:80" --name web localhost/nginx >"$work/out" 2>&1 ||
  fail "podman run -d -p"

for url in "http://$direct/" "http://$vip/" "http://127.0.0.1:$bport/" "http://127.0.0.1:$pport/"; do
  for _ in $(seq 100); do curl -sf -o /dev/null --max-time 1 "$url" && break; sleep 0.1; done
  curl -sf -o /dev/null --max-time 2 "$url" >"$work/out" 2>&1 || fail "curl $url"
done

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
# bench URL: wrk, 2 threads, 32 connections (keep-alive), 5 s; prints
# requests per second and the p99 latency in ms.
bench() {
  wrk -t2 -c32 -d5s --latency "$1" >"$work/out" 2>&1 || fail "wrk $1"
  grep -q 'Non-2xx\|Socket errors' "$work/out" && { echo "errors" >>"$work/out"; fail "wrk $1 (errors)"; }
  awk '$1 == "Requests/sec:" {r = $2} $1 == "99%" {v = $2; if (v ~ /us$/) ms = v / 1000; else if (v ~ /ms$/) ms = v + 0; else ms = v * 1000} END {print r, ms}' "$work/out"
}
declare -A rps p99
for i in $(seq 1 "$rounds"); do
  for t in direct vip published podman; do
    case $t in
      direct) url="http://$direct/" ;; vip) url="http://$vip/" ;;
      published) url="http://127.0.0.1:$bport/" ;; podman) url="http://127.0.0.1:$pport/" ;;
    esac
    read -r r l < <(bench "$url")
    rps[$t]+=" $r" p99[$t]+=" $l"
    echo "round $i $t: $r req/s, p99 $l ms" >&2
  done
done
# kill -9 of a replica's nginx until the balancer no longer holds its
# address (the nftables table, read with nft every 5 ms); each kill on a
# slot not killed before (a slot's first replacement is immediate).
declare -a drop=()
for slot in 1 2 3; do
  id=$("${B[@]}" ps -q --filter label=berth.service.name=web --filter "label=berth.task.slot=$slot")
  ip=$("${B[@]}" inspect -f '{{.NetworkSettings.IPAddress}}' "$id")
  pid=$("${B[@]}" inspect -f '{{.State.Pid}}' "$id")
  nft list table ip "$prefix" | grep -qF "$ip" ||
    { { echo "$ip not in the table:"; nft list table ip "$prefix"; "${B[@]}" service ps web; } >"$work/out" 2>&1; fail "finding slot $slot in the balancer"; }
  s=${EPOCHREALTIME/./}
  kill -9 "$pid"
  while nft list table ip "$prefix" | grep -qF "$ip"; do
    [ $((${EPOCHREALTIME/./} - s)) -lt 10000000 ] || { echo "still there after 10 s" >"$work/out"; fail "waiting for slot $slot to leave"; }
    sleep 0.005
  done
  e=${EPOCHREALTIME/./}
  drop+=($(((e - s) / 1000)))
  echo "kill -9 slot $slot: out of the balancer after ${drop[-1]} ms" >&2
  sleep 1
done

echo "berth $("${B[@]}" --version | awk '{print $NF}') vs $(podman --version), wrk -t2 -c32 -d5s, $rounds rounds alternating, medians; $(date -u +%F)"
printf '%-48s %12s %10s %8s\n' "" "req/s" "p99 ms" "vs direct"
d=$(median ${rps[direct]})
for t in direct vip published podman; do
  r=$(median ${rps[$t]}); l=$(median ${p99[$t]})
  case $t in
    direct) what="one replica's own address (3 replicas run)" ;; vip) what="the service's virtual IP (3 replicas)" ;;
    published) what="berth's published port, 127.0.0.1 (3 replicas)" ;; podman) what="Podman's published port, 127.0.0.1 (1 container)" ;;
  esac
  printf '%-48s %12.0f %10.2f %8.2f\n' "$what" "$r" "$l" "$(awk -v a="$r" -v b="$d" 'BEGIN {print a / b}')"
done
echo "kill -9 of a replica -> out of the balancer: median $(median "${drop[@]}") ms of 3 (target <= 1000 ms)"
