#!/usr/bin/env bash
# berth's main job: a web server in a container. It makes an nginx image
# on this machine (Debian's nginx by mmdebstrap, cached in
# /var/cache/berth-demo: about a minute the first time), puts a page into a
# named volume, serves it from a container with a published port and a
# 64 MiB memory limit, and shows it from the host: the page, `berth ps`,
# the limit as the container sees it, `berth logs`. Then it removes the
# container and serves the same page from a new one on the same volume.
# Last, it builds examples/build (a Containerfile in two stages on that
# image) with `berth build`, twice (the second time from the cache), and
# serves the site it made.
#
#   hack/install-deps.sh && make build && hack/demo.sh     (as root)
#
# It uses a berth root of its own (a temporary directory, removed at the
# end) with its own bridge (bdemo0), nftables table (bdemo) and subnet
# (10.177.0.0/24), so it leaves a user's berth alone; the host port is the
# first free one from 8080.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
berth=$here/bin/berth
[ "$(id -u)" = 0 ] || { echo "demo: run it as root (containers need namespaces, cgroups and overlay mounts)" >&2; exit 2; }
[ -x "$berth" ] || { echo "demo: build first: make build" >&2; exit 2; }
command -v curl >/dev/null || { echo "demo: needs curl (hack/install-deps.sh installs it)" >&2; exit 2; }

root=$(mktemp -d "${TMPDIR:-/var/tmp}/berth-demo.XXXXXX")
printf '[network]\nprefix = "bdemo"\ndefault_subnet = "10.177.0.0/24"\n' >"$root/berth.toml"
b() { "$berth" --root "$root" "$@"; }
cleanup() {
  set +e
  for id in $(b ps -aq 2>/dev/null); do b rm -f "$id" >/dev/null 2>&1; done
  b volume rm site >/dev/null 2>&1
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
