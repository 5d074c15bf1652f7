#!/usr/bin/env bash
# Prints the path of a gzip'd Debian bookworm root file system tarball with
# nginx, making it first if needed (mmdebstrap, about a minute, ~50 MB):
# the recipe of tests/fixture's nginx image, in which `nginx -g 'daemon off;'`
# serves /var/www/html on port 80 (IPv4 only, so it starts in network
# namespaces without IPv6) and logs to stdout (access) and stderr (errors).
#
#   hack/bench/nginx-rootfs.sh          (needs root and mmdebstrap)
#
# The tarball is cached in $BERTH_CACHE (default /var/cache/berth-demo)
# under a hash of this recipe; change the recipe and the next run makes a
# new one. hack/demo.sh and hack/bench/engine.sh use it.
set -euo pipefail
cache=${BERTH_CACHE:-/var/cache/berth-demo}
command -v mmdebstrap >/dev/null || { echo "nginx-rootfs: needs mmdebstrap (apt-get install mmdebstrap)" >&2; exit 2; }

index='<!DOCTYPE html>
<title>berth</title>
<p>Hello from nginx in a berth container.</p>
'
site='server {
	listen 80 default_server;
	server_name _;
	root /var/www/html;
	index index.html;
	location / {
		try_files $uri $uri/ =404;
	}
}
'
recipe=(
  --variant=minbase --include=nginx --format=tar
  '--aptopt=APT::Install-Recommends "false"'
  '--aptopt=Acquire::Check-Valid-Until "false"'
  '--dpkgopt=path-exclude=/usr/share/man/*'
  '--dpkgopt=path-exclude=/usr/share/doc/*'
  '--dpkgopt=path-exclude=/usr/share/locale/*'
  '--dpkgopt=path-exclude=/usr/share/info/*'
  # Hooks see the chroot as $1 and our environment.
  '--customize-hook=printf "%s" "$BERTH_INDEX_HTML" > "$1/var/www/html/index.html"'
  '--customize-hook=printf "%s" "$BERTH_NGINX_SITE" > "$1/etc/nginx/sites-available/default"'
  '--customize-hook=ln -sf /dev/stdout "$1/var/log/nginx/access.log"'
  '--customize-hook=ln -sf /dev/stderr "$1/var/log/nginx/error.log"'
  bookworm
)
hash=$(printf '%s\n' "${recipe[@]}" "$index" "$site" | sha256sum | cut -c1-16)
out=$cache/nginx-bookworm-$hash.tar.gz
if [ ! -s "$out" ]; then
  mkdir -p "$cache"
  exec 9>"$out.lock"
  flock 9 # another run may be making it
  if [ ! -s "$out" ]; then
    echo "nginx-rootfs: making $out with mmdebstrap (about a minute)..." >&2
    tmp=$out.tmp-$$
    trap 'rm -f "$tmp"' EXIT
    BERTH_INDEX_HTML=$index BERTH_NGINX_SITE=$site \
      mmdebstrap --quiet "${recipe[@]}" - </dev/null | gzip -1 >"$tmp"
    [ "${PIPESTATUS[0]}" = 0 ] || { echo "nginx-rootfs: mmdebstrap failed" >&2; exit 1; }
    mv "$tmp" "$out"
  fi
fi
echo "$out"
