#!/usr/bin/env bash
# Times `RUNTIME run` of /bin/true on one busybox bundle for berth-runtime and
# runc, alternating, and prints both medians and their ratio. Also samples
# the runtime's peak RSS while a container lives.
#
#   hack/bench/runtime.sh [RUNS]      (default 30; needs root, runc, busybox-static)
set -euo pipefail
runs=${1:-30}
here=$(cd "$(dirname "$0")/../.." && pwd)
berth=$here/bin/berth-runtime
[ -x "$berth" ] || { echo "build first: make build" >&2; exit 2; }
command -v runc >/dev/null || { echo "needs runc (apt-get install runc)" >&2; exit 2; }
work=$(mktemp -d /tmp/berth-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
bundle=$work/bundle
"$here/hack/busybox-bundle.sh" "$bundle" /bin/true >/dev/null

# $EPOCHREALTIME (microseconds) needs no fork, so timing adds nothing to either side.
declare -a tb tr
for i in $(seq 1 "$runs"); do
  s=${EPOCHREALTIME/./}; "$berth" --root "$work/berth" run --bundle "$bundle" "b$i" >/dev/null; e=${EPOCHREALTIME/./}; tb+=($((e - s)))
  s=${EPOCHREALTIME/./}; runc --root "$work/runc" run --bundle "$bundle" "r$i" >/dev/null; e=${EPOCHREALTIME/./}; tr+=($((e - s)))
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
mb=$(median "${tb[@]}"); mr=$(median "${tr[@]}")
printf 'runs:                %d each, alternating\n' "$runs"
printf 'berth-runtime run:   median %.2f ms\n' "$(echo "$mb/1000" | bc -l)"
printf 'runc run:            median %.2f ms\n' "$(echo "$mr/1000" | bc -l)"
printf 'ratio berth/runc:    %.2f\n' "$(echo "$mb/$mr" | bc -l)"

# Memory: the runtime's peak RSS for a run of a container that lives 0.3 s.
rss() { /usr/bin/time -f '%M' "$@" 2>&1 >/dev/null | tail -1; }
"$here/hack/busybox-bundle.sh" "$work/sleep" /bin/sleep 0.3 >/dev/null
printf 'peak RSS during a container life: berth-runtime %s KiB, runc %s KiB\n' \
  "$(rss "$berth" --root "$work/berth" run --bundle "$work/sleep" mb)" \
  "$(rss runc --root "$work/runc" run --bundle "$work/sleep" mr)"
