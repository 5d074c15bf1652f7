#!/usr/bin/env bash
# Times a cold `berth pull` against a cold `podman pull` of the same image,
# served by a local registry, alternating, and prints both medians, their
# ratio and both peak RSS medians, for each of two images made from one
# Debian root file system (nginx, python3 and perl from Debian packages,
# ~224 MB and ~10,700 files unpacked, ~84 MB compressed):
#
#   four       four gzip layers of similar size, which berth unpacks side
#              by side;
#   one-large  one gzip layer with most of the bytes (~80 MB compressed)
#              and three small ones on top (etc, var, usr/sbin), where the
#              large layer's unpacking is the whole pull.
#
#   make build && hack/bench/pull.sh [RUNS [SHAPE...]]   (default 5, both)
#
# Needs root, Go (to build hack/bench/mkimage) and the Debian packages
# mmdebstrap, docker-registry, podman and time; it installs nothing itself.
# The root file system and the images made from it are cached in
# ${XDG_CACHE_HOME:-~/.cache}/berth-bench/ (the first run takes a minute
# more to make them); remove that directory to make them again.
#
# Each timed pull starts with an empty store of its own (a fresh --root for
# berth; fresh --root, --runroot and --tmpdir for podman) and with no dirty
# pages left over (`sync` first: berth syncs its file system per layer and
# would otherwise pay for the previous run's writeback). One untimed pull of
# each first warms the page cache for the binaries and the registry's blobs,
# which both sides then share.
#
# The stores are removed at the end, not between runs: on ext4 without a
# journal (these machines' root file system), allocating an inode skips
# and re-scans inodes deleted in the last 5 s to 5 min (fs/ext4/ialloc.c,
# recently_deleted), so a pull that follows `rm -rf` of the previous
# store's ~10,000 files spends seconds in the kernel, whichever engine it
# is. RM_BETWEEN=1 removes each store right after its run instead. The
# stores go under ${TMPDIR:-/var/tmp} and need ~0.6 GB per run and image.
set -euo pipefail
runs=${1:-5}
shift || true
shapes=("$@")
[ ${#shapes[@]} -gt 0 ] || shapes=(four one-large)
for shape in "${shapes[@]}"; do
  case $shape in four | one-large) ;; *)
    echo "pull.sh: image shape $shape: want four or one-large" >&2
    exit 2
    ;;
  esac
done
here=$(cd "$(dirname "$0")/../.." && pwd)
berth=${BERTH:-$here/bin/berth} # BERTH=PATH times another build

[ "$(id -u)" = 0 ] || { echo "pull.sh: needs root (podman's overlay driver and berth's layer unpacking)" >&2; exit 2; }
[ -x "$berth" ] || { echo "pull.sh: build first: make build" >&2; exit 2; }
missing=()
for p in mmdebstrap:mmdebstrap docker-registry:docker-registry podman:podman /usr/bin/time:time; do
  command -v "${p%%:*}" >/dev/null || missing+=("${p#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "pull.sh: missing Debian packages: ${missing[*]} (apt-get install ${missing[*]})" >&2
  exit 2
fi
command -v go >/dev/null || { echo "pull.sh: needs Go to build hack/bench/mkimage" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/var/tmp}/berth-bench-pull.XXXXXX")
rm_between=${RM_BETWEEN:-0}
need_kib=$(((runs + 1) * ${#shapes[@]} * 600 * 1024))
if [ "$rm_between" != 1 ] && [ "$(df -Pk "$work" | awk 'NR == 2 {print $4}')" -lt "$need_kib" ]; then
  echo "pull.sh: $((need_kib / 1024 / 1024)) GB free needed under ${TMPDIR:-/var/tmp} for $runs runs (or RM_BETWEEN=1)" >&2
  rmdir "$work"
  exit 2
fi
regpid=
cleanup() {
  set +e
  if [ -n "$regpid" ]; then
    kill "$regpid" 2>/dev/null
    wait "$regpid" 2>/dev/null
  fi
  unmount_under "$work"
  rm -rf "$work"
}
# unmount_under unmounts everything mounted below $1, deepest first
# (podman's overlay driver bind-mounts its own directory).
unmount_under() {
  awk -v d="$1/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r |
    while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 1. The images: a Debian root file system, made once and cached, split
#    into layers by hack/bench/mkimage, one layout per shape.
cache=${XDG_CACHE_HOME:-$HOME/.cache}/berth-bench
packages=nginx,python3,perl
rootfs=$cache/bookworm-minbase-${packages//,/-}.tar
mkdir -p "$cache"
if [ ! -f "$rootfs" ]; then
  echo "making $rootfs with mmdebstrap (about a minute)..." >&2
  mmdebstrap --quiet --format=tar --variant=minbase --include="$packages" bookworm "${rootfs%.tar}.tmp.tar"
  mv "${rootfs%.tar}.tmp.tar" "$rootfs"
fi
(cd "$here" && go build -o "$work/mkimage" ./hack/bench/mkimage)
layout() {
  case $1 in
  four) echo "$cache/nginx-image-v1" ;;
  *) echo "$cache/nginx-$1-v1" ;;
  esac
}
for shape in "${shapes[@]}"; do
  "$work/mkimage" -rootfs "$rootfs" -split "$shape" -layout "$(layout "$shape")" >/dev/null
done

# 2. The registry: Debian's docker-registry on a free loopback port, plain
#    HTTP, storage in the work directory.
# shellcheck source=hack/bench/registry.sh
. "$here/hack/bench/registry.sh"
start_registry "$work"
declare -A images
for shape in "${shapes[@]}"; do
  out=$("$work/mkimage" -split "$shape" -layout "$(layout "$shape")" -push "127.0.0.1:$port/bench/nginx:$shape")
  images[$shape]=${out%%$'\n'*}
done

# Neither side sees the user's or the system's registries, credentials or
# Podman configuration.
printf 'unqualified-search-registries = []\n' >"$work/registries.conf"
mkdir -p "$work/docker"
printf '{"auths":{}}\n' >"$work/docker/config.json"
printf '[containers]\n[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n' >"$work/containers.conf"
export CONTAINERS_REGISTRIES_CONF=$work/registries.conf DOCKER_CONFIG=$work/docker \
  REGISTRY_AUTH_FILE=$work/docker/config.json CONTAINERS_CONF=$work/containers.conf \
  CONTAINERS_STORAGE_CONF=$work/storage.conf

# Podman's overlay driver if this kernel and file system take it, else vfs.
# storage.conf must name a root and a run root; every podman command here
# gives its own.
storage_conf() {
  printf '[storage]\ndriver = "%s"\ngraphroot = "%s"\nrunroot = "%s"\n' "$1" "$work/unused/root" "$work/unused/run" >"$work/storage.conf"
}
driver=overlay
storage_conf "$driver"
if ! podman --root "$work/probe/root" --runroot "$work/probe/run" --tmpdir "$work/probe/tmp" \
  --storage-driver overlay info >/dev/null 2>"$work/probe.err"; then
  echo "podman's overlay driver fails here ($(tail -1 "$work/probe.err")); using vfs" >&2
  driver=vfs
  storage_conf "$driver"
fi
unmount_under "$work/probe"
rm -rf "$work/probe"

# 3. The runs, alternating, each pull into an empty store of its own.
# timed NAME DIR: pulls $ref with NAME (berth or podman) into an empty
# store in DIR and leaves the time in microseconds in $us and the peak RSS
# in KiB in $kib. /usr/bin/time adds the same fork and exec to both sides.
timed() {
  local dir=$2 s e cmd
  case $1 in
  berth) cmd=("$berth" --root "$dir/root") ;;
  podman) cmd=(podman --root "$dir/root" --runroot "$dir/run" --tmpdir "$dir/tmp"
    --storage-driver "$driver" --cgroup-manager cgroupfs --events-backend file) ;;
  esac
  mkdir -p "$dir"
  sync
  s=${EPOCHREALTIME/./}
  if ! /usr/bin/time -o "$dir.rss" -f %M "${cmd[@]}" pull --tls-verify=false "$ref" >"$dir.log" 2>&1; then
    echo "pull.sh: $1 pull failed:" >&2
    cat "$dir.log" >&2
    exit 1
  fi
  e=${EPOCHREALTIME/./}
  us=$((e - s))
  kib=$(tail -1 "$dir.rss")
  unmount_under "$dir"
  if [ "$rm_between" = 1 ]; then
    rm -rf "$dir"
  fi
}

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

for shape in "${shapes[@]}"; do
  ref=127.0.0.1:$port/bench/nginx:$shape
  d=$work/${shape:0:1} # short: podman refuses a run root of more than 50 characters
  tb=() tp=() mb=() mp=()
  echo "image $shape:" >&2
  timed berth "$d/warm-b"
  timed podman "$d/warm-p"
  for i in $(seq 1 "$runs"); do
    timed berth "$d/b$i"; tb+=("$us"); mb+=("$kib")
    timed podman "$d/p$i"; tp+=("$us"); mp+=("$kib")
    printf 'run %d: berth %.2f s %d MiB, podman %.2f s %d MiB\n' "$i" \
      "$(awk -v u="${tb[-1]}" 'BEGIN {print u / 1e6}')" $((mb[-1] / 1024)) \
      "$(awk -v u="${tp[-1]}" 'BEGIN {print u / 1e6}')" $((mp[-1] / 1024)) >&2
  done

  # 4. The figures.
  tbm=$(median "${tb[@]}"); tpm=$(median "${tp[@]}")
  mbm=$(median "${mb[@]}"); mpm=$(median "${mp[@]}")
  echo "== $shape: ${images[$shape]}"
  echo "registry:              docker-registry $(docker-registry --version | awk '{print $3}') on 127.0.0.1, plain HTTP"
  echo "peers:                 berth $("$berth" --version | awk '{print $NF}'), $(podman --version) (--storage-driver $driver)"
  printf 'runs:                  %d each, alternating, each into a new empty store (removed %s)\n' "$runs" \
    "$([ "$rm_between" = 1 ] && echo "right after its run" || echo "at the end")"
  awk -v b="$tbm" -v p="$tpm" -v rb="$mbm" -v rp="$mpm" 'BEGIN {
    printf "berth pull:            median %.2f s\n", b / 1e6
    printf "podman pull:           median %.2f s\n", p / 1e6
    printf "ratio berth/podman:    %.2f\n", b / p
    printf "peak RSS (median):     berth %.1f MiB, podman %.1f MiB\n", rb / 1024, rp / 1024
  }'
done
