#!/usr/bin/env bash
# Makes an OCI bundle whose root file system is Debian's busybox-static,
# with runc's default config.json running the given command.
#
#   hack/busybox-bundle.sh DIR [COMMAND ARGS...]     (default command: sh)
set -euo pipefail
dir=${1:?usage: busybox-bundle.sh DIR [COMMAND...]}; shift
bb=/bin/busybox
[ -x "$bb" ] || { echo "needs busybox-static (apt-get install busybox-static)" >&2; exit 2; }
here=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$dir/rootfs/bin" "$dir/rootfs/etc" "$dir/rootfs/tmp"
cp "$bb" "$dir/rootfs/bin/busybox"
for app in $("$bb" --list); do [ "$app" = busybox ] || ln -sf busybox "$dir/rootfs/bin/$app"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$dir/rootfs/etc/passwd"
echo 'root:x:0:' > "$dir/rootfs/etc/group"
rm -f "$dir/config.json"
"$here/bin/berth-runtime" spec --bundle "$dir"
[ $# -gt 0 ] || set -- sh
python3 - "$dir/config.json" "$@" <<'PY'
import json, sys
path, args = sys.argv[1], sys.argv[2:]
c = json.load(open(path))
c["process"]["terminal"] = False
c["process"]["args"] = args
json.dump(c, open(path, "w"), indent=1)
PY
echo "$dir"
