#!/usr/bin/env bash
# berth's main job: a web server in a container. It makes an nginx image
# on this machine (Debian's nginx by mmdebstrap, cached in
# /var/cache/berth-demo: about a minute the first time), puts a page into a
# named volume, serves it from a container with a published port and a
# 64 MiB memory limit, and shows it from the host: the page, `berth ps`,
# the limit as the container sees it, `berth logs`. Then it removes the
# container and serves the same page from a new one on the same volume.
# Then it builds examples/build (a Containerfile in two stages on that
# image) with `berth build`, twice (the second time from the cache), and
# serves the site it made. Last, a service: three nginx replicas behind one
# published port and one name (the kernel spreads the connections over
# them), that berth keeps running (one is killed with kill -9 and
# replaced), updates one at a time, scales, and rolls back after an update
# to a missing image paused.
#
#   hack/install-deps.sh && make build && hack/demo.sh     (as root)
#
# It uses a berth root of its own (a temporary directory, removed at the
# end) with its own bridge (bdemo0), nftables table (bdemo) and subnet
# (10.177.0.0/24, or the next one the host does not route), so it leaves a
# user's berth alone; the host port is the first free one from 8080. The
# service commands start that root's control plane (`berth serve`) in the
# background; the demo stops it at the end.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
berth=$here/bin/berth
[ "$(id -u)" = 0 ] || { echo "demo: run it as root (containers need namespaces, cgroups and overlay mounts)" >&2; exit 2; }
[ -x "$berth" ] || { echo "demo: build first: make build" >&2; exit 2; }
command -v curl >/dev/null || { echo "demo: needs curl (hack/install-deps.sh installs it)" >&2; exit 2; }

# The subnet is 10.177.0.0/24 unless the host already routes it (another
# bridge, a VPN): then the next 10.N.0.0/24 that it does not.
subnet=
for n in $(seq 177 199); do
  if [ -z "$(ip -4 route show match "10.$n.0.1" | grep -v '^default')" ]; then subnet=10.$n.0.0/24; break; fi
done
[ -n "$subnet" ] || { echo "demo: 10.177.0.0/24 to 10.199.0.0/24 are all routed on this host; free one" >&2; exit 2; }
root=$(mktemp -d "${TMPDIR:-/var/tmp}/berth-demo.XXXXXX")
printf '[network]\nprefix = "bdemo"\ndefault_subnet = "%s"\n' "$subnet" >"$root/berth.toml"
b() { "$berth" --root "$root" "$@"; }
cleanup() {
  set +e
  # The control plane first, so that it starts no replica again; then every
  # container, the services' replicas too.
  local pid
  pid=$(cat "$root/serve.lock" 2>/dev/null)
  if [ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "--root $root serve"; then
    kill "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
  fi
  for id in $(b ps -aq 2>/dev/null); do b rm -f "$id" >/dev/null 2>&1; done
  b volume rm site >/dev/null 2>&1
  # What a killed control plane left of its services: the demo's own
  # nftables table and bridges.
  nft delete table ip bdemo 2>/dev/null
  ip -o link show | awk -F': ' 'index($2, "bdemo") == 1 {sub(/@.*/, "", $2); print $2}' | xargs -r -n1 ip link del 2>/dev/null
  awk -v d="$root/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l
  rm -rf "$root"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# say prints a command as a user would type it; the demo then runs it.
if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold= plain=; fi
say() { printf '\n%s$ %s%s\n' "$bold" "$*" "$plain"; }
port=8080
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done

echo "== an nginx image, made here (no registry needed)"
tarball=$("$here/hack/bench/nginx-rootfs.sh")
say "berth import -c 'CMD [\"nginx\", \"-g\", \"daemon off;\"]' -c 'EXPOSE 80' -c 'STOPSIGNAL SIGQUIT' $(basename "$tarball") localhost/nginx"
b import -c 'CMD ["nginx", "-g", "daemon off;"]' -c 'EXPOSE 80' -c 'STOPSIGNAL SIGQUIT' "$tarball" localhost/nginx
b images

echo
echo "== a page in a named volume, written by a one-off container"
page='<!DOCTYPE html>
<title>berth demo</title>
<h1>Hello from berth</h1>
<p>This page lives in the volume "site".</p>
'
say "printf '%s' \"\$PAGE\" | berth run --rm -i -v site:/site localhost/nginx sh -c 'cat > /site/index.html'"
printf '%s' "$page" | b run --rm -i -v site:/site localhost/nginx sh -c 'cat > /site/index.html'
say "berth volume ls"
b volume ls

echo
echo "== the web server: published port, the volume as its document root, a memory limit"
say "berth run -d --name web -p $port:80 -v site:/var/www/html -m 64m localhost/nginx"
start=${EPOCHREALTIME/./}
b run -d --name web -p "$port:80" -v site:/var/www/html -m 64m localhost/nginx
# serving: polls until the page comes back with 200 (10 s at most).
serving() {
  local deadline=$((${EPOCHREALTIME/./} + 10000000))
  until [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$port/")" = 200 ]; do
    [ "${EPOCHREALTIME/./}" -lt "$deadline" ] || { echo "demo: nothing served on port $port after 10 s; logs:" >&2; b logs "$1" >&2; exit 1; }
    sleep 0.01
  done
}
serving web
printf 'serving %d ms after `berth run` started\n' $(((${EPOCHREALTIME/./} - start) / 1000))
say "curl http://127.0.0.1:$port/"
curl -sS "http://127.0.0.1:$port/"
say "berth exec web sh -c 'echo \"<p>Added by berth exec at \$(date +%T).</p>\" >> /var/www/html/index.html'"
b exec web sh -c 'echo "<p>Added by berth exec at $(date +%T).</p>" >> /var/www/html/index.html'
say "curl http://127.0.0.1:$port/"
curl -sS "http://127.0.0.1:$port/"
say "berth ps"
b ps
say "berth exec web cat /sys/fs/cgroup/memory/memory.limit_in_bytes     # the limit the container sees"
b exec web sh -c 'cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max'
say "berth logs web"
b logs web

echo
echo "== the container goes, the volume stays"
say "berth rm -f web"
b rm -f web
say "berth volume ls"
b volume ls
say "berth run -d --name web2 -p $port:80 -v site:/var/www/html localhost/nginx"
b run -d --name web2 -p "$port:80" -v site:/var/www/html localhost/nginx
serving web2
say "curl http://127.0.0.1:$port/"
curl -sS "http://127.0.0.1:$port/"
say "berth rm -f web2 && berth volume rm site"
b rm -f web2
b volume rm site

echo
echo "== an image built from a Containerfile (examples/build: two stages on that nginx image)"
say "berth build -t localhost/site --build-arg BASE=localhost/nginx examples/build"
start=${EPOCHREALTIME/./}
b build -t localhost/site --build-arg BASE=localhost/nginx "$here/examples/build"
printf 'built in %d ms\n' $(((${EPOCHREALTIME/./} - start) / 1000))
say "berth build -t localhost/site --build-arg BASE=localhost/nginx examples/build     # again: every step from the cache"
start=${EPOCHREALTIME/./}
b build -t localhost/site --build-arg BASE=localhost/nginx "$here/examples/build" | tail -n 3
printf 'rebuilt in %d ms\n' $(((${EPOCHREALTIME/./} - start) / 1000))
say "berth run -d --name site -p $port:80 localhost/site"
b run -d --name site -p "$port:80" localhost/site
serving site
say "curl http://127.0.0.1:$port/files.html     # made by the first stage"
curl -sS "http://127.0.0.1:$port/files.html"
say "berth exec site cat build.txt"
b exec site cat build.txt
say "berth rm -f site"
b rm -f site

echo
echo "== a service: replicas that berth keeps running, rolls out, scales and rolls back"
echo "(the first service command starts this root's control plane, berth serve, in the background)"
netsubnet=${subnet%.0.0/24}.1.0/24
say "berth network create --subnet $netsubnet demo     # a network with DNS names"
b network create --subnet "$netsubnet" demo
# Each replica's page says which replica it is.
say "berth service create --name web --replicas 3 --network demo -p $port:80 localhost/nginx sh -c 'hostname > /var/www/html/index.html && exec nginx -g \"daemon off;\"'"
b service create --name web --replicas 3 --network demo -p "$port:80" localhost/nginx \
  sh -c 'hostname > /var/www/html/index.html && exec nginx -g "daemon off;"'
say "berth service ls"
b service ls
say "berth service ps web"
b service ps web
say "for i in 1 2 3 4 5 6; do curl -s http://127.0.0.1:$port/; done     # one port, spread over the replicas"
for i in 1 2 3 4 5 6; do curl -sS --max-time 5 "http://127.0.0.1:$port/"; done
say "berth service inspect -f '{{.status.virtualIPs}}' web"
b service inspect -f '{{.status.virtualIPs}}' web
say "berth run --rm --network demo localhost/nginx sh -c \"getent hosts web; getent ahostsv4 tasks.web | awk '{print \\\$1}' | sort -u\"     # the name's virtual IP; tasks.web: the replicas"
b run --rm --network demo localhost/nginx sh -c "getent hosts web; getent ahostsv4 tasks.web | awk '{print \$1}' | sort -u"

echo
echo "== break it: kill -9 one replica's nginx from the host; the service replaces it"
say "berth ps --filter label=berth.service.name=web"
b ps --filter label=berth.service.name=web
id=$(b ps -q --filter label=berth.service.name=web --filter label=berth.task.slot=2)
say "kill -9 \$(berth inspect -f '{{.State.Pid}}' $id)     # web.2"
start=${EPOCHREALTIME/./}
kill -9 "$(b inspect -f '{{.State.Pid}}' "$id")"
# healed: slot 2's killed replica is in the history and the service is
# ready again.
healed() {
  b service ps web --format '{{.Error}}' | grep 'exited with status 137' >/dev/null &&
    [ "$(b service ls --filter name=web --format '{{.Replicas}}')" = 3/3 ]
}
deadline=$((start + 30000000))
until healed; do
  [ "${EPOCHREALTIME/./}" -lt "$deadline" ] || { echo "demo: web did not heal within 30 s:" >&2; b service ps web >&2; exit 1; }
  sleep 0.1
done
printf 'web is 3/3 ready again %d ms after the kill\n' $(((${EPOCHREALTIME/./} - start) / 1000))
say "berth service ps web     # the killed one exited with status 137; a new one took its slot"
b service ps web

echo
echo "== an update is a new revision, rolled out one replica at a time"
say "berth service update --env-add GREETING=hi web"
b service update --env-add GREETING=hi web
say "berth ps --filter label=berth.service.name=web --format 'table {{.Names}}\t{{.Label \"berth.revision\"}}\t{{.Status}}'"
b ps --filter label=berth.service.name=web --format 'table {{.Names}}\t{{.Label "berth.revision"}}\t{{.Status}}'
one=$(b ps --filter label=berth.service.name=web --filter label=berth.task.slot=1 --format '{{.Names}}')
say "berth exec $one printenv GREETING"
b exec "$one" printenv GREETING

echo
echo "== scale it up and down"
say "berth service scale web=5"
b service scale web=5
say "berth service ls"
b service ls
say "berth service scale web=2"
b service scale web=2
say "berth service ls"
b service ls

echo
echo "== a broken update pauses; the replicas it did not reach keep serving; roll back"
say "berth service update --image localhost/nope web     # an image that is nowhere"
status=0
b service update --image localhost/nope web || status=$?
echo "(exit status $status)"
[ "$status" != 0 ] || { echo "demo: the update to a missing image did not fail" >&2; exit 1; }
say "berth service ls"
b service ls
say "berth ps --filter label=berth.service.name=web"
b ps --filter label=berth.service.name=web
say "curl http://127.0.0.1:$port/     # the old replicas still serve"
curl -sS --max-time 5 "http://127.0.0.1:$port/"
say "berth service rollback web"
b service rollback web
say "berth service ls"
b service ls

echo
echo "== autoscale: to zero replicas when idle, back on the first request"
say "berth service autoscale web --min 0 --max 3 --cooldown 2s --trigger http-rps,target=50"
b service autoscale web --min 0 --max 3 --cooldown 2s --trigger http-rps,target=50
deadline=$((${EPOCHREALTIME/./} + 60000000))
until [ "$(b service inspect -f '{{.spec.replicas}}' web)" = 0 ] &&
  [ -z "$(b ps -q --filter label=berth.service.name=web)" ]; do
  [ "${EPOCHREALTIME/./}" -lt "$deadline" ] || { echo "demo: web did not go to zero within 60 s:" >&2; b service autoscale web >&2; exit 1; }
  sleep 0.1
done
say "berth service ls     # idle for 2 s: no replica left"
b service ls
say "curl http://127.0.0.1:$port/     # held while a replica starts, then answered"
start=${EPOCHREALTIME/./}
curl -sS --max-time 10 "http://127.0.0.1:$port/"
printf 'answered %d ms after the request, from zero replicas\n' $(((${EPOCHREALTIME/./} - start) / 1000))
say "berth service autoscale web"
b service autoscale web

echo
say "berth service rm web"
b service rm web
say "berth service ls"
b service ls
# The control plane takes the service out of the network just after.
say "berth network rm demo"
for _ in $(seq 100); do b network rm demo >/dev/null 2>&1 && break; sleep 0.1; done
b network ls
