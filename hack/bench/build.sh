#!/usr/bin/env bash
# Times `berth build` against `buildah build` on the same Containerfile and
# context (examples/build: two stages on a Debian bookworm + nginx base, three
# COPYs, three RUNs, 17 instructions), alternating, and prints medians, ratios
# and peak RSS as a markdown table for docs/benchmarks.md:
#
#   1. cold build: every run into a new empty store, the base image pulled
#      from a local registry;
#   2. unchanged rebuild: the same store again and again, every step a cache
#      hit (buildah with --layers);
#   3. many instructions: FROM scratch and MANY (default 10000) ENV and
#      LABEL lines, each ENV reading the one before (V4=${V2:+y}4, so that
#      the config stays linear in MANY too): a cold build into a new
#      store and the unchanged rebuild, berth against buildah without
#      --layers (one commit at the end: with --layers, buildah commits an
#      image per instruction and takes minutes for 1,000 lines); also the
#      size of berth's images.db after the build and after `builder prune`.
#      MANY=0 leaves this case out.
#
#   make build && hack/bench/build.sh [RUNS]       (default 5)
#   MANY=1000 hack/bench/build.sh 3                (case 3 with 1,000 lines)
#   BENCH_ONLY=buildah hack/bench/build.sh 3       (buildah alone; also
#                                                   BENCH_ONLY=berth)
#
# Needs root and the Debian packages buildah, runc, docker-registry, curl,
# time and mmdebstrap; it installs nothing itself. The base image is the
# root file system of hack/bench/nginx-rootfs.sh (made once, about a minute,
# cached), imported by berth with CMD bash and pushed to Debian's
# docker-registry on 127.0.0.1 (plain HTTP, its own storage), as
# localhost:PORT/bench/debian:base.
#
# Both engines build with the same arguments: -t localhost/bench/app:latest
# (a fully qualified name: buildah resolves a short one through a short-name
# alias cache in /var/cache/containers), -f Containerfile, --build-arg
# BASE=localhost:PORT/bench/debian:base, the context. buildah also gets:
#   --storage-driver overlay, its own --root and --runroot (and TMPDIR) per store;
#   --runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024
#     (crun refuses these machines' hybrid cgroup layout; the ulimits as for podman);
#   --isolation oci, and --network none: no RUN needs the network, and
#     buildah's default network sets up a netavark bridge, firewall rules and
#     /run/containers/networks state for every RUN; berth gets --network none
#     too when its build command has that option;
#   --layers: a cached image per step, in the cold case too (what makes the
#     cached rebuild possible, as berth's per-step cache does);
#   --pull=false: pull the base only when it is not in the store (berth's
#     behaviour; buildah's default also asks the registry on every FROM);
#   --format docker: the OCI format has no HEALTHCHECK (buildah drops it, with
#     a warning);
#   --tls-verify=false (the registry is also marked insecure in the
#     registries.conf that both engines read through CONTAINERS_REGISTRIES_CONF).
#
# Each timed run starts after a `sync` (no dirty pages left from the
# previous one), with bash's $EPOCHREALTIME as the timer and GNU time's %M
# (the largest process's peak RSS, children included) for memory. Before the
# timed runs, one untimed cold build of each makes the stores the rebuilds
# use (and warms the page cache for the binaries, the context and the
# registry's blobs); the rebuild case starts with one untimed rebuild of
# each. A rebuild must give the image ID of the first build (every step a
# cache hit), or the script stops.
#
# Cold stores are removed at the end, not between runs: on ext4 without a
# journal (these machines' root file system), allocating an inode skips and
# re-scans inodes deleted in the last 5 s to 5 min (fs/ext4/ialloc.c,
# recently_deleted), so a build that follows `rm -rf` of the previous store's
# ~7,000 files spends seconds in the kernel, whichever engine it is.
# RM_BETWEEN=1 removes each store right after its run instead. The stores go
# under ${TMPDIR:-/var/tmp} and need ~0.5 GB per pair of cold runs.
#
# Nothing outside the work directory is touched: the script runs in a mount
# namespace of its own (it re-executes itself under `unshare --mount`), where
# buildah's fixed system paths -- its blob-info cache in
# /var/lib/containers/cache, /var/cache/containers, runc's state in /run/runc
# -- are empty directories of the work directory mounted over the real ones
# (any of them missing is made for the mount point and removed at the end).
# berth's binaries (bin/, or BERTH_BIN=PATH and the berth-runtime beside it)
# and the context are copied into the work directory first, so a
# `make build` or an edit during the run changes nothing. Everything goes
# at the end, also on failure or Ctrl-C: the registry, buildah's containers
# and mounts, the stores.
set -euo pipefail
runs=${1:-5}
many=${MANY:-10000}
here=$(cd "$(dirname "$0")/../.." && pwd)
src=${BERTH_BIN:-$here/bin/berth}
only=${BENCH_ONLY:-}

case $only in
"" | berth | buildah) ;;
*) echo "build.sh: BENCH_ONLY is berth or buildah, not '$only'" >&2; exit 2 ;;
esac
case $many in
'' | *[!0-9]*) echo "build.sh: MANY is a number of instructions (0 for none), not '$many'" >&2; exit 2 ;;
esac
case $runs in
'' | *[!0-9]* | 0) echo "build.sh: RUNS is a number of runs, at least 1, not '$runs'" >&2; exit 2 ;;
esac
[ "$(id -u)" = 0 ] || { echo "build.sh: needs root" >&2; exit 2; }
[ -x "$src" ] || { echo "build.sh: build first: make build" >&2; exit 2; }
missing=()
for p in docker-registry:docker-registry curl:curl /usr/bin/time:time mmdebstrap:mmdebstrap unshare:util-linux; do
  command -v "${p%%:*}" >/dev/null || missing+=("${p#*:}")
done
if [ "$only" != berth ]; then
  for p in buildah:buildah runc:runc; do
    command -v "${p%%:*}" >/dev/null || missing+=("${p#*:}")
  done
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "build.sh: missing Debian packages: ${missing[*]} (apt-get install ${missing[*]})" >&2
  exit 2
fi
if [ "$only" != buildah ] && ! "$src" build --help >/dev/null 2>&1; then
  echo "build.sh: $src has no build command yet (BENCH_ONLY=buildah times buildah alone)" >&2
  exit 2
fi

# A mount namespace of our own (see above); the rest runs in it.
if [ "${BERTH_BUILD_BENCH_NS:-}" != 1 ]; then
  BERTH_BUILD_BENCH_NS=1 exec unshare --mount --propagation private -- "$BASH" "$0" "$@"
fi

nginx_tar=$("$here/hack/bench/nginx-rootfs.sh")

work=$(mktemp -d "${TMPDIR:-/var/tmp}/berth-bench-build.XXXXXX")
rm_between=${RM_BETWEEN:-0}
need_kib=$(((runs + 1) * 500 * 1024 + 400 * 1024))
if [ "$rm_between" != 1 ] && [ "$(df -Pk "$work" | awk 'NR == 2 {print $4}')" -lt "$need_kib" ]; then
  echo "build.sh: $((need_kib / 1024)) MB free needed under ${TMPDIR:-/var/tmp} for $runs runs (or RM_BETWEEN=1)" >&2
  rmdir "$work"
  exit 2
fi

regpid=
prefix=
bstores=()  # buildah's stores (DIR: DIR/root, DIR/run)
shadowed=() # system directories with one of ours mounted over them
made=()     # "DIR TOP": DIR made for a mount point, TOP the first of its parents that was missing
cleanup() {
  set +eu
  trap - EXIT INT TERM
  if [ -n "$regpid" ]; then
    kill "$regpid" 2>/dev/null
    wait "$regpid" 2>/dev/null
  fi
  local d top m
  for d in "${bstores[@]}"; do
    if [ -d "$d/root" ] && mounted_under "$d"; then
      buildah --root "$d/root" --runroot "$d/run" --storage-driver overlay rm -a >/dev/null 2>&1
    fi
  done
  unmount_under "$work"
  if [ -n "$prefix" ]; then
    ip -o link show | awk -F': ' -v p="$prefix" 'index($2, p) == 1 {sub(/@.*/, "", $2); print $2}' |
      xargs -r -n1 ip link del 2>/dev/null
    nft delete table inet "$prefix" 2>/dev/null
    nft delete table ip "$prefix" 2>/dev/null
  fi
  for d in "${shadowed[@]}"; do umount "$d" 2>/dev/null || umount -l "$d"; done
  for m in "${made[@]}"; do
    d=${m% *} top=${m#* }
    while rmdir "$d" 2>/dev/null && [ "$d" != "$top" ]; do d=$(dirname "$d"); done
  done
  rm -rf "$work"
}
mounted_under() { awk -v d="$1/" 'index($5, d) == 1 {f = 1} END {exit !f}' /proc/self/mountinfo; }
# unmount_under unmounts everything mounted below $1, deepest first
# (buildah's overlay driver bind-mounts its own directory).
unmount_under() {
  awk -v d="$1/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r |
    while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shadow DIR mounts an empty directory of the work directory over DIR.
shadow() {
  local d=$1 s=$work/shadow/${1//\//_} top
  if [ ! -d "$d" ]; then
    top=$d
    while [ ! -e "$(dirname "$top")" ]; do top=$(dirname "$top"); done
    mkdir -p "$d"
    made+=("$d $top")
  fi
  mkdir -p "$s"
  mount --bind "$s" "$d"
  shadowed+=("$d")
}
shadow /var/lib/containers/cache
shadow /var/cache/containers
shadow /run/runc
blobinfo=$work/shadow/_var_lib_containers_cache

mkdir -p "$work/bin" "$work/tmp"
cp "$src" "$work/bin/berth"
[ -x "$(dirname "$src")/berth-runtime" ] && cp "$(dirname "$src")/berth-runtime" "$work/bin/"
B=$work/bin/berth
cp -a "$here/examples/build" "$work/ctx"
ctx=$work/ctx
export TMPDIR=$work/tmp

# fail reports a command that failed, with its output ($2), and stops.
fail() { echo "build.sh: $1 failed:" >&2; cat "$2" >&2; exit 1; }

# 1. The registry: Debian's docker-registry on a free loopback port, plain
#    HTTP, storage in the work directory; the base image pushed to it.
# shellcheck source=hack/bench/registry.sh
. "$here/hack/bench/registry.sh"
start_registry "$work"
base=localhost:$port/bench/debian:base
tag=localhost/bench/app:latest
"$B" --root "$work/seed" import -c 'CMD ["bash"]' "$nginx_tar" "$base" >"$work/out" 2>&1 || fail "berth import" "$work/out"
"$B" --root "$work/seed" push "$base" >"$work/out" 2>&1 || fail "berth push" "$work/out"

# Neither engine sees the user's or the system's registries, credentials,
# containers.conf or storage.conf.
cat >"$work/registries.conf" <<EOF
unqualified-search-registries = []

[[registry]]
location = "localhost:$port"
insecure = true
EOF
mkdir -p "$work/docker"
printf '{"auths":{}}\n' >"$work/docker/config.json"
printf '[containers]\n[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n' >"$work/containers.conf"
printf '[storage]\ndriver = "overlay"\ngraphroot = "%s"\nrunroot = "%s"\n' "$work/unused/root" "$work/unused/run" >"$work/storage.conf"
export CONTAINERS_REGISTRIES_CONF=$work/registries.conf DOCKER_CONFIG=$work/docker \
  REGISTRY_AUTH_FILE=$work/docker/config.json CONTAINERS_CONF=$work/containers.conf \
  CONTAINERS_STORAGE_CONF=$work/storage.conf
unset BUILDAH_ISOLATION BUILDAH_LAYERS BUILDAH_FORMAT BUILDAH_RUNTIME STORAGE_DRIVER STORAGE_OPTS

# berth's stores get a berth.toml naming a bridge, nftables table and
# subnet of their own, should a RUN step ever use berth's default network.
n=$((RANDOM % 256))
prefix=$(printf 'bbb%02x' "$n")
printf '[network]\nprefix = "%s"\ndefault_subnet = "10.247.%d.0/24"\n' "$prefix" "$n" >"$work/berth.toml"
berth_flags=()
if [ "$only" != buildah ] && "$B" build --help 2>&1 | grep -q -- '--network'; then
  berth_flags+=(--network none)
fi
common=(-t "$tag" -f "$ctx/Containerfile" --build-arg "BASE=$base" "$ctx")
# The many-instruction case's context: only its Containerfile.
mctx=$work/many
manytag=localhost/bench/many:latest
mkdir -p "$mctx"
{
  echo "FROM scratch"
  for ((i = 0; i < many; i++)); do
    if ((i % 2)); then echo "LABEL l$i=v$i"; elif ((i == 0)); then echo "ENV V0=x"; else echo "ENV V$i=\${V$((i - 2)):+y}$i"; fi
  done
} >"$mctx/Containerfile"

# command_for ENGINE DIR [many] sets cmd to ENGINE's build into the store in
# DIR, of examples/build or of the many-instruction file.
command_for() {
  local args=("${common[@]}") layers=--layers
  if [ "${3:-}" = many ]; then args=(-t "$manytag" -f "$mctx/Containerfile" "$mctx") layers=--layers=false; fi
  case $1 in
  berth) cmd=("$B" --root "$2/root" build "${berth_flags[@]}" "${args[@]}") ;;
  buildah) cmd=(buildah --root "$2/root" --runroot "$2/run" --storage-driver overlay build
    --runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --isolation oci --network none
    "$layers" --pull=false --format docker --tls-verify=false "${args[@]}") ;;
  esac
}
# image_id ENGINE DIR prints the ID of $tag in the store in DIR.
image_id() {
  case $1 in
  berth) "$B" --root "$2/root" image inspect -f '{{.Id}}' "$tag" ;;
  buildah) buildah --root "$2/root" --runroot "$2/run" --storage-driver overlay images --no-trunc -q "$tag" ;;
  esac
}
# image_cmd ENGINE DIR prints the CMD of $tag in the store in DIR.
image_cmd() {
  case $1 in
  berth) "$B" --root "$2/root" image inspect -f '{{.Config.Cmd}}' "$tag" ;;
  buildah) buildah --root "$2/root" --runroot "$2/run" --storage-driver overlay inspect -t image -f '{{.OCIv1.Config.Cmd}}' "$tag" ;;
  esac
}

# timed ENGINE DIR LOG [cold] [many]: builds with ENGINE into the store in
# DIR, output in LOG, and leaves the time in microseconds in $us and the
# peak RSS in KiB in $kib. A cold buildah run also starts without a
# blob-info cache.
timed() {
  local engine=$1 dir=$2 log=$3 s e
  command_for "$engine" "$dir" "${5:-}"
  [ "$engine" = buildah ] && bstores+=("$dir")
  mkdir -p "$dir/tmp"
  if [ "$engine" = berth ] && [ ! -e "$dir/root" ]; then
    mkdir -p "$dir/root"
    cp "$work/berth.toml" "$dir/root/"
  fi
  if [ "${4:-}" = cold ] && [ "$engine" = buildah ]; then rm -f "$blobinfo"/*; fi
  sync
  s=${EPOCHREALTIME/./}
  TMPDIR=$dir/tmp /usr/bin/time -o "$log.rss" -f %M "${cmd[@]}" </dev/null >"$log" 2>&1 ||
    fail "$engine build ($dir)" "$log"
  e=${EPOCHREALTIME/./}
  us=$((e - s))
  kib=$(tail -1 "$log.rss")
}

engines=()
[ "$only" != buildah ] && engines+=(berth)
[ "$only" != berth ] && engines+=(buildah)
secs() { awk -v u="$1" 'BEGIN {printf "%.2f", u / 1e6}'; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
declare -A first   # ENGINE: image ID of the untimed first build
declare -A t m     # CASE_ENGINE: space-separated times (us) and peak RSS (KiB)

# 2. The untimed first build of each: the rebuild stores, and a check of
#    the image.
for en in "${engines[@]}"; do
  timed "$en" "$work/rebuild-$en" "$work/rebuild-$en.0.log" cold
  first[$en]=$(image_id "$en" "$work/rebuild-$en")
  c=$(image_cmd "$en" "$work/rebuild-$en")
  case $c in *nginx*) ;; *) echo "build.sh: $en's image has CMD '$c', not nginx's" >&2; exit 1 ;; esac
  printf 'first build (untimed): %s %s s, %d MiB\n' "$en" "$(secs "$us")" $((kib / 1024)) >&2
done

# 3. Cold builds, alternating, each into a new empty store.
for i in $(seq 1 "$runs"); do
  line="cold run $i:"
  for en in "${engines[@]}"; do
    dir=$work/cold-$en-$i
    timed "$en" "$dir" "$dir.log" cold
    t[cold_$en]+="$us " m[cold_$en]+="$kib "
    line+=" $en $(secs "$us") s $((kib / 1024)) MiB,"
    unmount_under "$dir"
    if [ "$rm_between" = 1 ]; then rm -rf "$dir"; fi
  done
  echo "${line%,}" >&2
done

# 4. Unchanged rebuilds, alternating, in the stores of the first builds; one
#    untimed rebuild of each first. Each must hit the cache at every step.
for i in $(seq 0 "$runs"); do
  line="rebuild run $i:"
  [ "$i" != 0 ] || line="rebuild (untimed):"
  for en in "${engines[@]}"; do
    dir=$work/rebuild-$en
    timed "$en" "$dir" "$dir.$((i + 1)).log"
    id=$(image_id "$en" "$dir")
    if [ "$id" != "${first[$en]}" ]; then
      echo "build.sh: $en's rebuild $i made $id, not ${first[$en]}: not every step hit the cache" >&2
      cat "$dir.$((i + 1)).log" >&2
      exit 1
    fi
    if [ "$i" -gt 0 ]; then t[rebuild_$en]+="$us " m[rebuild_$en]+="$kib "; fi
    line+=" $en $(secs "$us") s $((kib / 1024)) MiB,"
  done
  echo "${line%,}" >&2
done

# 5. Many instructions: cold builds into new stores, then unchanged
#    rebuilds in the first cold store of each; alternating. berth's rebuild
#    must give the image of its build. Then berth's images.db, before and
#    after `builder prune`.
if [ "$many" -gt 0 ]; then
  for i in $(seq 0 "$runs"); do
    line="many, cold run $i:"
    [ "$i" != 0 ] || line="many, cold (untimed):"
    for en in "${engines[@]}"; do
      dir=$work/many-$en-$i
      timed "$en" "$dir" "$dir.log" cold many
      if [ "$i" -gt 0 ]; then t[mcold_$en]+="$us " m[mcold_$en]+="$kib "; fi
      line+=" $en $(secs "$us") s $((kib / 1024)) MiB,"
      unmount_under "$dir"
    done
    echo "${line%,}" >&2
  done
  if [ "$only" != buildah ]; then
    first[many]=$("$B" --root "$work/many-berth-0/root" image inspect -f '{{.Id}}' "$manytag")
  fi
  for i in $(seq 1 "$runs"); do
    line="many, rebuild run $i:"
    for en in "${engines[@]}"; do
      dir=$work/many-$en-0
      timed "$en" "$dir" "$dir.r$i.log" "" many
      if [ "$en" = berth ]; then
        id=$("$B" --root "$dir/root" image inspect -f '{{.Id}}' "$manytag")
        if [ "$id" != "${first[many]}" ]; then
          echo "build.sh: berth's many-instruction rebuild $i made $id, not ${first[many]}" >&2
          exit 1
        fi
      fi
      t[mrebuild_$en]+="$us " m[mrebuild_$en]+="$kib "
      line+=" $en $(secs "$us") s $((kib / 1024)) MiB,"
    done
    echo "${line%,}" >&2
  done
  if [ "$only" != buildah ]; then
    dbsize=$(stat -c %s "$work/many-berth-0/root/images.db")
    "$B" --root "$work/many-berth-0/root" builder prune >/dev/null
    dbpruned=$(stat -c %s "$work/many-berth-0/root/images.db")
  fi
fi

# 6. The figures.
# shellcheck disable=SC2086 # the lists are space-separated numbers
for c in cold rebuild mcold mrebuild; do
  for en in berth buildah; do
    if [ -n "${t[${c}_$en]:-}" ]; then
      t[${c}_$en]=$(median ${t[${c}_$en]}) m[${c}_$en]=$(median ${m[${c}_$en]})
    fi
  done
done
bver=$("$B" --version | awk '{print $NF}')
hver=$(buildah --version 2>/dev/null | awk '{print $3}') || true
[ -n "$hver" ] || hver=unknown
ncopy=$(grep -ci '^COPY' "$ctx/Containerfile") nrun=$(grep -ci '^RUN' "$ctx/Containerfile")
nfrom=$(grep -ci '^FROM' "$ctx/Containerfile")
command_for berth "\$STORE"; bcmd=${cmd[*]}
command_for buildah "\$STORE"; hcmd=${cmd[*]}
echo
echo "berth $bver vs buildah $hver, examples/build ($nfrom stages, $ncopy COPY, $nrun RUN), base $base"
echo "(docker-registry on 127.0.0.1, plain HTTP); $runs runs each, alternating, medians; $(date -u +%F)"
[ "$only" = buildah ] || echo "  berth:   ${bcmd//"$work"/\$WORK}"
[ "$only" = berth ] || echo "  buildah: ${hcmd//"$work"/\$WORK}"
echo
echo "| $(date -u +%F), $runs runs | berth | buildah $hver | ratio | target | peak RSS berth / buildah |"
echo "| --- | --- | --- | --- | --- | --- |"
for c in cold rebuild mcold mrebuild; do
  case $c in
  cold) label="cold build (empty store, base pulled)" target="≤ 0.7" ;;
  rebuild) label="unchanged rebuild (all cache hits)" target="≤ 0.2" ;;
  mcold) label="$many instructions, cold build (buildah without --layers)" target="≤ 1" ;;
  mrebuild) label="$many instructions, unchanged rebuild (buildah builds again)" target="≤ 0.5" ;;
  esac
  [ "$many" -gt 0 ] || [ "${c#m}" = "$c" ] || continue
  awk -v label="$label" -v target="$target" \
    -v b="${t[${c}_berth]:-}" -v p="${t[${c}_buildah]:-}" -v rb="${m[${c}_berth]:-}" -v rp="${m[${c}_buildah]:-}" '
    function s(u) { return u == "" ? "—" : sprintf("%.2f s", u / 1e6) }
    function mib(k) { return k == "" ? "—" : sprintf("%.1f MiB", k / 1024) }
    BEGIN {
      r = (b == "" || p == "") ? "—" : sprintf("%.2f", b / p)
      printf "| %s | %s | %s | %s | %s | %s / %s |\n", label, s(b), s(p), r, target, mib(rb), mib(rp)
    }'
done
if [ -n "${dbsize:-}" ]; then
  echo
  echo "berth's images.db after the $many-instruction build: $((dbsize / 1024)) KiB ($((dbsize / many)) bytes per instruction); after builder prune: $((dbpruned / 1024)) KiB"
fi
