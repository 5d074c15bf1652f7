# Sourced by the benchmarks that measure berth against Podman (engine.sh,
# services.sh, svcnet.sh, autoscale.sh): neither side may touch the user's stores,
# networks or configuration.
#
# bench_setup NAME TAG OCTET makes the work directory $work
# (berth-bench-NAME.*), copies $src (and berth-runtime beside it) into it
# and gives berth a --root of its own whose bridges and nftables table are
# named $prefix (TAG and a random byte $n) on the subnet 10.OCTET.$n.0/24:
# B runs it. Podman gets its own --root, --runroot, --tmpdir,
# containers.conf, storage.conf, registries.conf and network directory: P
# runs it; its network is to be $pnet on $psubnet (10.OCTET+1.$n.0/24).
bench_setup() {
  local name=$1 tag=$2 octet=$3
  work=$(mktemp -d "${TMPDIR:-/var/tmp}/berth-bench-$name.XXXXXX")
  n=$((RANDOM % 256))
  prefix=$(printf '%s%02x' "$tag" "$n")
  psubnet=10.$((octet + 1)).$n.0/24
  pnet=$tag$n
  mkdir -p "$work/bin" "$work/berth"
  cp "$src" "$work/bin/berth"
  if [ -x "$(dirname "$src")/berth-runtime" ]; then cp "$(dirname "$src")/berth-runtime" "$work/bin/"; fi
  printf '[network]\nprefix = "%s"\ndefault_subnet = "10.%d.%d.0/24"\n' "$prefix" "$octet" "$n" >"$work/berth/berth.toml"
  B=("$work/bin/berth" --root "$work/berth")

  printf 'unqualified-search-registries = []\n' >"$work/registries.conf"
  printf '[containers]\n[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n[network]\nnetwork_backend = "netavark"\nnetwork_config_dir = "%s"\n' \
    "$work/podman/networks" >"$work/containers.conf"
  printf '[storage]\ndriver = "overlay"\ngraphroot = "%s"\nrunroot = "%s"\n' "$work/podman/root" "$work/podman/run" >"$work/storage.conf"
  export CONTAINERS_REGISTRIES_CONF=$work/registries.conf CONTAINERS_CONF=$work/containers.conf \
    CONTAINERS_STORAGE_CONF=$work/storage.conf
  P=(podman --root "$work/podman/root" --runroot "$work/podman/run" --tmpdir "$work/podman/tmp"
    --cgroup-manager cgroupfs --events-backend file --runtime runc)
}

# freeport PORT prints the first port from PORT on that nothing on the host
# listens on.
freeport() {
  local p=$1
  while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done
  echo "$p"
}
