#!/usr/bin/env bash
# berth's main job today: make a busybox bundle from Debian's busybox-static
# and run a container from it with berth-runtime, showing that it has its own
# hostname, that its program is PID 1, and the memory limit it runs under.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
rt=$here/bin/berth-runtime
work=$(mktemp -d /tmp/berth-demo.XXXXXX)
root=$work/state
trap '"$rt" --root "$root" delete --force demo >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

"$here/hack/busybox-bundle.sh" "$work/bundle" sh -c '
  echo "hostname:      $(hostname)"
  echo "my pid:        $$"
  echo "memory limit:  $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max) bytes"
  echo "processes:"; ps -o pid,comm; echo "exiting"' >/dev/null
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["hostname"] = "berth-demo"
c["linux"].setdefault("resources", {})["memory"] = {"limit": 64 * 1024 * 1024}
json.dump(c, open(p, "w"), indent=1)
PY
echo "\$ berth-runtime run --bundle $work/bundle demo"
"$rt" --root "$root" run --bundle "$work/bundle" demo
