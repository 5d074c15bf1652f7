# Sourced by the benchmarks: start_registry DIR starts Debian's
# docker-registry on a free loopback port (plain HTTP, storage and log in
# DIR), waits until it answers, and sets $port and $regpid (the caller
# kills it).
# shellcheck shell=bash
start_registry() {
  local dir=$1
  port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
  port=$((20000 + RANDOM % 40000))
  until port_free "$port"; do port=$((20000 + RANDOM % 40000)); done
  cat >"$dir/registry.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
YML
  docker-registry serve "$dir/registry.yml" >"$dir/registry.log" 2>&1 &
  regpid=$!
  for _ in $(seq 100); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/" 2>/dev/null && return 0
    kill -0 "$regpid" 2>/dev/null || { cat "$dir/registry.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "docker-registry did not answer on 127.0.0.1:$port in 10 s" >&2
  exit 1
}
