#!/usr/bin/env bash
# Starts and stops a complete local manifold farm on 127.0.0.1: PostgreSQL, a registry with
# a two-platform busybox base image, the coordinator, and agents (by default one for
# linux/amd64 and one for linux/arm64, the non-native one building under QEMU).
#
# Usage: ops/farm.sh up|down|status|purge
#        ops/farm.sh stop|kill|start NAME
#   up      stops any farm already running in FARM_DIR, then starts one and waits until
#           every agent is online; writes FARM_DIR/farm.env (MANIFOLD_SERVER,
#           MANIFOLD_REGISTRY, MANIFOLD_DATABASE_URL) and FARM_DIR/farm.conf (what start
#           needs). Data (database, registry, agent work dirs) is kept across down/up.
#   down    stops everything started in FARM_DIR (also what a failed up left behind).
#   status  lists each process; exit 0 when all are running, 3 otherwise.
#   purge   down, then deletes FARM_DIR and all its data.
#   stop NAME   SIGTERM to one process (an agent drains first), SIGKILL to it and its
#           children after MANIFOLD_FARM_STOP_TIMEOUT; PostgreSQL gets a fast shutdown.
#           Exit 0 when it stopped by itself, 4 when it had to be killed.
#   kill NAME   SIGKILL to one process and every process it started (a lost host).
#   start NAME  starts one process again with the configuration `up` used (farm.conf) and
#           waits until it is ready (an agent: until the coordinator has welcomed it).
#   NAME is postgres, registry, coordinator or an agent's name.
#
# Env: MANIFOLD_FARM_DIR (default <repo>/.farm), MANIFOLD_BUILD_DIR (default <repo>/build),
#      MANIFOLD_FARM_PG_PORT (55432), MANIFOLD_FARM_REGISTRY_PORT (5000),
#      MANIFOLD_FARM_REGISTRY_DATA (the registry's storage; default FARM_DIR/registry/data),
#      MANIFOLD_FARM_API_PORT (7080), MANIFOLD_FARM_AGENT_PORT (7081),
#      MANIFOLD_FARM_METRICS_PORT (7082, the coordinator's /metrics; agents pick free ports),
#      MANIFOLD_FARM_SLOTS (build slots per agent, 1),
#      MANIFOLD_FARM_AGENTS (agents as NAME:PLATFORM, space-separated; default
#        "amd64-1:linux/amd64 arm64-1:linux/arm64"; PLATFORM may be a comma-separated list),
#      MANIFOLD_FARM_BACKEND (what agents build with: buildah, the default, or docker, which
#        needs a Docker engine: give it with MANIFOLD_DOCKER_HOST, and MANIFOLD_DOCKER_NETWORK=host
#        when it has no bridge network; its registry mirror must serve `FROM busybox`; or
#        synthetic, a benchmark tool whose agents fake builds),
#      MANIFOLD_FARM_ONLY_SERVICES=1 (start only PostgreSQL, the registry and the base image),
#      MANIFOLD_FARM_KEEP_ON_FAILURE=1 (leave processes running when up fails, to debug),
#      MANIFOLD_FARM_STOP_TIMEOUT (seconds between SIGTERM and SIGKILL, 20),
#      MANIFOLD_FARM_PLAINTEXT=1 (agent link without CURVE, as in development).
# The agent link runs with CURVE, as in production: `up` makes fresh key pairs with
# `manifold keygen` in FARM_DIR/keys (coordinator.key/.pub, NAME.key/.pub per agent) and
# lists every agent's public key in FARM_DIR/keys/agent-keys, the coordinator's allow-list
# (edit it and send the coordinator SIGHUP to reload it).
# The programs read their own settings from the environment, which they inherit from
# this script (e.g. MANIFOLD_HEARTBEAT_INTERVAL_MS, MANIFOLD_MISSED_HEARTBEATS and
# MANIFOLD_MAX_ATTEMPTS for the coordinator, MANIFOLD_DRAIN_GRACE and
# MANIFOLD_SYNTHETIC_BUILD_MS for agents). `up` saves
# the MANIFOLD_* variables (except MANIFOLD_FARM_*) in farm.conf with the ports, agents
# and build dir, and `start` restores them, so a restarted process is configured as before.
# Every process runs in its own session with its output in FARM_DIR/logs/NAME.log (`start`
# appends to it) and its pid in FARM_DIR/pids/NAME.pid, so it outlives this script and
# never holds its stdout.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
farm_dir="${MANIFOLD_FARM_DIR:-$repo/.farm}"
build_dir="${MANIFOLD_BUILD_DIR:-$repo/build}"
pg_port="${MANIFOLD_FARM_PG_PORT:-55432}"
registry_port="${MANIFOLD_FARM_REGISTRY_PORT:-5000}"
registry_data="${MANIFOLD_FARM_REGISTRY_DATA:-}"  # "": FARM_DIR/registry/data
api_port="${MANIFOLD_FARM_API_PORT:-7080}"
agent_port="${MANIFOLD_FARM_AGENT_PORT:-7081}"
metrics_port="${MANIFOLD_FARM_METRICS_PORT:-7082}"
slots="${MANIFOLD_FARM_SLOTS:-1}"
only_services="${MANIFOLD_FARM_ONLY_SERVICES:-0}"
keep_on_failure="${MANIFOLD_FARM_KEEP_ON_FAILURE:-0}"
agents_spec="${MANIFOLD_FARM_AGENTS:-amd64-1:linux/amd64 arm64-1:linux/arm64}"
backend="${MANIFOLD_FARM_BACKEND:-buildah}"
stop_timeout="${MANIFOLD_FARM_STOP_TIMEOUT:-20}" # seconds after SIGTERM before SIGKILL
# A farm on one host emulates its foreign platform: waiting for a native agent that never
# comes would only delay every build by the coordinator's default wait (60 s).
export MANIFOLD_EMULATION_FALLBACK_WAIT="${MANIFOLD_EMULATION_FALLBACK_WAIT:-0}"
plaintext="${MANIFOLD_FARM_PLAINTEXT:-0}"

readonly database=manifold
readonly log_tail_lines=40
readonly services=(coordinator registry postgres)
readonly exit_killed=4 # `stop NAME` had to SIGKILL
# Where PostgreSQL's data goes when the postgres user cannot enter FARM_DIR.
readonly pg_fallback_prefix=/var/tmp/manifold-postgres-

say() {
  echo "farm: $*"
}

die() {
  echo "farm: $*" >&2
  exit 1
}

elapsed_since() {
  local now
  now="$(date +%s%N)"
  printf '%d.%d s' $(((now - $1) / 1000000000)) $(((now - $1) / 100000000 % 10))
}

# ---------------------------------------------------------------------------------------
# Paths

resolve_farm_dir() {
  case "$farm_dir" in
    /*) ;;
    *) farm_dir="$PWD/$farm_dir" ;;
  esac
  if [ -d "$farm_dir" ]; then
    farm_dir="$(cd "$farm_dir" && pwd -P)"
  fi
  logs="$farm_dir/logs"
  pids="$farm_dir/pids"
}

pg_bindir() {
  if [ -n "${MANIFOLD_PG_BINDIR:-}" ]; then
    echo "$MANIFOLD_PG_BINDIR"
    return
  fi
  local dir
  dir="$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)"
  [ -n "$dir" ] || die "PostgreSQL server binaries not found (install postgresql-15: ops/install-deps.sh, or set MANIFOLD_PG_BINDIR)"
  echo "$dir"
}

# The postgres user must reach its data dir; FARM_DIR may sit under a directory it cannot
# enter (such as /root). Then the data lives in a postgres-reachable directory that
# FARM_DIR/postgres links to.
pg_root() {
  if [ -L "$farm_dir/postgres" ]; then
    readlink -f "$farm_dir/postgres"
  else
    echo "$farm_dir/postgres"
  fi
}

prepare_pg_root() {
  local root
  if [ ! -L "$farm_dir/postgres" ]; then
    mkdir -p "$farm_dir/postgres"
    chown postgres: "$farm_dir/postgres"
    if ! runuser -u postgres -- test -w "$farm_dir/postgres"; then
      # A private temp dir (mode 0700) only needs search permission for others.
      if [ "$(stat -c %u "$farm_dir")" = "$(id -u)" ]; then
        chmod o+x "$farm_dir"
      fi
    fi
    if ! runuser -u postgres -- test -w "$farm_dir/postgres"; then
      root="$pg_fallback_prefix$(printf '%s' "$farm_dir" | sha256sum | cut -c1-16)"
      say "postgres cannot enter $farm_dir; keeping its data in $root ($0 purge deletes it)"
      rmdir "$farm_dir/postgres" 2>/dev/null || die "$farm_dir/postgres is not empty but postgres cannot use it"
      mkdir -p "$root"
      # Names its farm, so that it can be collected once that farm is deleted.
      printf '%s\n' "$farm_dir" >"$root/farm-dir"
      ln -s "$root" "$farm_dir/postgres"
    fi
  fi
  root="$(pg_root)"
  mkdir -p "$root"
  chown postgres: "$root"
  runuser -u postgres -- test -w "$root" || die "postgres cannot write to $root"
}

# Deletes the data dirs of fallback clusters whose farm was deleted without `purge` (a test
# harness removing its temporary FARM_DIR), unless a postgres still runs on one.
collect_orphaned_pg_dirs() {
  local dir owner pid
  for dir in "$pg_fallback_prefix"*; do
    [ -f "$dir/farm-dir" ] || continue
    owner="$(head -n 1 "$dir/farm-dir")"
    if [ -n "$owner" ] && [ "$(readlink -f "$owner/postgres" 2>/dev/null)" = "$dir" ]; then
      continue
    fi
    pid=""
    if [ -f "$dir/data/postmaster.pid" ]; then
      pid="$(head -n 1 "$dir/data/postmaster.pid")"
    fi
    if is_ours "$pid" "$dir/data"; then
      continue
    fi
    rm -rf "$dir"
  done
}

# ---------------------------------------------------------------------------------------
# Processes

# Closes every inherited descriptor above 2, so a started daemon holds nothing of the
# caller's (a test harness reading this script's output waits for its pipe to close).
close_inherited_fds() {
  local entry fd
  for entry in "/proc/$BASHPID/fd/"*; do
    fd="${entry##*/}"
    if [ "$fd" -gt 2 ]; then
      eval "exec $fd>&-" 2>/dev/null || true
    fi
  done
}

# spawn NAME COMMAND...: starts COMMAND in its own session (it survives this script and
# terminal hang-ups), output appended to logs/NAME.log, pid in pids/NAME.pid.
spawn() {
  local name="$1"
  shift
  (
    close_inherited_fds
    exec setsid "$@"
  ) >>"$logs/$name.log" 2>&1 </dev/null &
  echo "$!" >"$pids/$name.pid"
}

# Whether PID is alive and is one of this farm's processes (its command line names the
# farm's directory), so a recycled pid is never signalled.
is_ours() {
  local pid="$1" marker="$2"
  if [ -z "$pid" ] || [ ! -r "/proc/$pid/cmdline" ]; then
    return 1
  fi
  # The process may exit between the test above and this read.
  { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF -- "$marker"
}

pid_of() {
  if [ -f "$pids/$1.pid" ]; then
    head -n 1 "$pids/$1.pid"
  fi
}

marker_of() {
  if [ "$1" = postgres ]; then
    echo "$(pg_root)/data"
  else
    echo "$farm_dir"
  fi
}

# tree_of PID: PID and every live process that descends from it or belongs to its session
# (the processes we start are session leaders). buildah runs in a process group of its own,
# so signalling the group alone would leave it building.
tree_of() {
  ps -e -o pid= -o ppid= -o sid= | awk -v root="$1" '
    { parent[$1] = $2; session[$1] = $3 }
    END {
      if (!(root in parent)) exit
      found[root] = 1
      for (p in parent) if (session[p] == root) found[p] = 1
      do {
        grown = 0
        for (p in parent) if (!(p in found) && (parent[p] in found)) { found[p] = 1; grown = 1 }
      } while (grown)
      for (p in found) print p
    }'
}

# kill_tree PID: SIGKILL to PID and its tree. The tree is frozen first (SIGSTOP) and listed
# again until the listing holds only frozen members, so nothing forked meanwhile escapes.
kill_tree() {
  local members again _
  members="$(tree_of "$1" | sort -n)"
  [ -n "$members" ] || return 0
  for _ in 1 2 3 4 5; do
    # shellcheck disable=SC2086 # one pid per word
    kill -STOP $members 2>/dev/null || true
    again="$(tree_of "$1" | sort -n)"
    [ "$again" = "$members" ] && break
    members="$again"
  done
  # shellcheck disable=SC2086
  [ -z "$members" ] || kill -KILL $members 2>/dev/null || true
}

# What is left of a session once its leader PID is gone: its orphaned children, such as a
# buildah started by an agent. The session id cannot be reused while they exist.
kill_session_leftovers() {
  local -a left=()
  mapfile -t left < <(ps -e -o pid= -o sid= | awk -v sid="$1" '$2 == sid && $1 != sid { print $1 }')
  if [ "${#left[@]}" -gt 0 ]; then
    kill -KILL "${left[@]}" 2>/dev/null || true
  fi
}

# stop_processes NAME...: SIGTERM to each, a bounded wait for all, then SIGKILL to what is
# left and everything it started. Sets killed=1 when SIGKILL was needed.
killed=0
stop_processes() {
  local name pid deadline left
  local -a live=()
  for name in "$@"; do
    pid="$(pid_of "$name")"
    if is_ours "$pid" "$farm_dir"; then
      kill -TERM "$pid" 2>/dev/null || true
      live+=("$name")
    fi
  done
  deadline=$((SECONDS + stop_timeout))
  while [ "${#live[@]}" -gt 0 ]; do
    left=0
    for name in "${live[@]}"; do
      is_ours "$(pid_of "$name")" "$farm_dir" && left=1
    done
    [ "$left" -eq 0 ] && break
    if [ "$SECONDS" -ge "$deadline" ]; then
      for name in "${live[@]}"; do
        pid="$(pid_of "$name")"
        if is_ours "$pid" "$farm_dir"; then
          say "$name (pid $pid) did not stop within $stop_timeout s: SIGKILL"
          kill_tree "$pid"
          killed=1
        fi
      done
      sleep 0.2
      break
    fi
    sleep 0.1
  done
  for name in "${live[@]}"; do
    pid="$(pid_of "$name")"
    [ -n "$pid" ] && kill_session_leftovers "$pid"
    say "stopped $name"
  done
  for name in "$@"; do
    rm -f "$pids/$name.pid"
  done
}

stop_postgres() {
  local root data bin pid
  root="$(pg_root)"
  data="$root/data"
  pid="$(pid_of postgres)"
  if [ -f "$data/postmaster.pid" ]; then
    pid="$(head -n 1 "$data/postmaster.pid")"
  fi
  if is_ours "$pid" "$data"; then
    bin="$(pg_bindir)"
    if ! runuser -u postgres -- "$bin/pg_ctl" -D "$data" stop -m fast -w -t 30 >>"$logs/postgres.log" 2>&1; then
      say "postgres did not stop within 30 s: immediate shutdown"
      killed=1
      runuser -u postgres -- "$bin/pg_ctl" -D "$data" stop -m immediate -w -t 10 >>"$logs/postgres.log" 2>&1 ||
        { is_ours "$pid" "$data" && kill -KILL "$pid" 2>/dev/null; } || true
    fi
    say "stopped postgres"
  fi
  rm -f "$pids/postgres.pid"
}

agent_names() {
  local f name
  for f in "$pids"/*.pid; do
    [ -e "$f" ] || continue
    name="$(basename "$f" .pid)"
    case " ${services[*]} " in
      *" $name "*) ;;
      *) echo "$name" ;;
    esac
  done
}

stop_all() {
  [ -d "$pids" ] || return 0
  local -a agents
  mapfile -t agents < <(agent_names)
  # Agents first, so none loses its coordinator mid-build; the database last.
  if [ "${#agents[@]}" -gt 0 ]; then
    stop_processes "${agents[@]}"
  fi
  stop_processes coordinator
  stop_processes registry
  stop_postgres
  rm -f "$farm_dir/farm.env"
}

# ---------------------------------------------------------------------------------------
# Start-up

current_log=""
up_finished=0
fresh_logs=1 # up starts each log afresh; start appends to it

# open_log NAME: makes NAME's log the current one (shown when start-up fails).
open_log() {
  current_log="$logs/$1.log"
  if [ "$fresh_logs" -eq 1 ]; then
    : >"$current_log"
  else
    echo "---- farm: starting $1 again at $(date -u +%Y-%m-%dT%H:%M:%SZ) ----" >>"$current_log"
  fi
}

# The end of the log of what was starting when a step failed, for the person reading.
print_log_tail() {
  if [ -n "$current_log" ] && [ -f "$current_log" ]; then
    echo "farm: last $log_tail_lines lines of $current_log:" >&2
    tail -n "$log_tail_lines" "$current_log" | sed 's/^/  | /' >&2
  fi
}

on_up_exit() {
  local status="$1"
  [ "$up_finished" -eq 1 ] && return
  [ "$status" -ne 0 ] || return
  print_log_tail
  if [ "$keep_on_failure" = 1 ]; then
    echo "farm: up failed; processes left running (MANIFOLD_FARM_KEEP_ON_FAILURE=1); stop them with: $0 down" >&2
  else
    echo "farm: up failed; stopping what was started" >&2
    stop_all >&2 || true
  fi
}

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

require_free_port() {
  local port="$1" variable="$2"
  [[ "$port" =~ ^[0-9]+$ ]] || die "$variable must be a port number, got '$port'"
  if port_in_use "$port"; then
    die "port $port on 127.0.0.1 is already in use: stop what listens there or set $variable"
  fi
}

# wait_for SECONDS DESCRIPTION NAME COMMAND...: polls COMMAND until it succeeds, failing if
# the process NAME exits or SECONDS pass.
wait_for() {
  local seconds="$1" what="$2" name="$3"
  shift 3
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if ! is_ours "$(pid_of "$name")" "$farm_dir"; then
      die "$name exited while waiting for $what"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      die "timed out after $seconds s waiting for $what"
    fi
    sleep 0.2
  done
}

start_postgres() {
  local t0 root data sockdir bin opts
  t0="$(date +%s%N)"
  open_log postgres
  bin="$(pg_bindir)"
  prepare_pg_root
  root="$(pg_root)"
  data="$root/data"
  # --no-sync: skipping initdb's fsync of every new file saves seconds; a local farm's fresh
  # cluster does not need to survive a host crash in the first moments of its life.
  if [ ! -f "$data/PG_VERSION" ]; then
    rm -rf "$data"
    timeout 120 runuser -u postgres -- "$bin/initdb" -D "$data" --auth=trust -U postgres \
      --encoding=UTF8 --locale=C --no-sync >>"$current_log" 2>&1 </dev/null ||
      die "initdb failed"
  fi
  # Unix socket paths are limited to 107 bytes; a deep FARM_DIR gets TCP only.
  sockdir="$root/run"
  mkdir -p "$sockdir"
  chown postgres: "$sockdir"
  if [ "${#sockdir}" -gt 90 ]; then
    sockdir=""
  fi
  opts="-p $pg_port -k '$sockdir' -c listen_addresses=127.0.0.1"
  (
    close_inherited_fds
    exec setsid runuser -u postgres -- "$bin/pg_ctl" -D "$data" -o "$opts" -w -t 30 start
  ) >>"$current_log" 2>&1 </dev/null || die "postgres did not start within 30 s"
  head -n 1 "$data/postmaster.pid" >"$pids/postgres.pid"

  local psql=("$bin/psql" -X -q -h 127.0.0.1 -p "$pg_port" -U postgres)
  if [ -z "$(timeout 30 "${psql[@]}" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$database'" 2>>"$current_log")" ]; then
    timeout 30 "$bin/createdb" -h 127.0.0.1 -p "$pg_port" -U postgres "$database" >>"$current_log" 2>&1 ||
      die "createdb $database failed"
  fi
  say "postgres ready on 127.0.0.1:$pg_port, database $database ($(elapsed_since "$t0"))"
}

start_registry() {
  local t0
  t0="$(date +%s%N)"
  open_log registry
  local data="${registry_data:-$farm_dir/registry/data}"
  mkdir -p "$farm_dir/registry" "$data"
  cat >"$farm_dir/registry/config.yml" <<EOF
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$registry_port
EOF
  command -v docker-registry >/dev/null || die "docker-registry not found (ops/install-deps.sh)"
  spawn registry docker-registry serve "$farm_dir/registry/config.yml"
  wait_for 30 "the registry on 127.0.0.1:$registry_port" registry \
    curl -sf --max-time 2 "http://127.0.0.1:$registry_port/v2/"
  say "registry ready on 127.0.0.1:$registry_port ($(elapsed_since "$t0"))"
}

start_base_image() {
  local t0
  t0="$(date +%s%N)"
  open_log base-image
  (
    close_inherited_fds
    exec timeout 900 "$repo/ops/base-image.sh" "127.0.0.1:$registry_port" "$farm_dir"
  ) >>"$current_log" 2>&1 </dev/null || die "base image failed"
  say "base image 127.0.0.1:$registry_port/library/busybox:latest ready ($(elapsed_since "$t0"))"
}

# make_keys: fresh CURVE key pairs for the coordinator and every agent, and the
# coordinator's allow-list holding every agent's public key.
make_keys() {
  local keys="$farm_dir/keys" name
  rm -rf "$keys"
  mkdir -m 700 "$keys"
  "$build_dir/cli/manifold" keygen "$keys/coordinator" >/dev/null || die "manifold keygen failed"
  for name in "${agent_list[@]}"; do
    "$build_dir/cli/manifold" keygen "$keys/$name" >/dev/null || die "manifold keygen failed"
    cat "$keys/$name.pub" >>"$keys/agent-keys"
  done
}

# set_curve_flags NAME: curve_flags becomes what puts the coordinator or agent NAME on CURVE.
set_curve_flags() {
  local keys="$farm_dir/keys"
  curve_flags=()
  if [ "$plaintext" = 1 ]; then
    return 0
  elif [ "$1" = coordinator ]; then
    curve_flags=(--curve-secret-key "$keys/coordinator.key" --agent-keys "$keys/agent-keys")
  else
    curve_flags=(--curve-secret-key "$keys/$1.key" --coordinator-public-key "$keys/coordinator.pub")
  fi
}

start_coordinator() {
  local t0
  t0="$(date +%s%N)"
  open_log coordinator
  mkdir -p "$farm_dir/coordinator"
  set_curve_flags coordinator
  spawn coordinator "$build_dir/coordinator/manifold-coordinator" "${curve_flags[@]}" \
    --database-url "$database_url" \
    --api-listen "127.0.0.1:$api_port" \
    --agent-listen "tcp://127.0.0.1:$agent_port" \
    --public-url "http://127.0.0.1:$api_port" \
    --metrics-listen "127.0.0.1:$metrics_port" \
    --state-dir "$farm_dir/coordinator"
  wait_for 60 "the coordinator's /readyz on 127.0.0.1:$api_port" coordinator \
    curl -sf --max-time 2 "http://127.0.0.1:$api_port/readyz"
  say "coordinator ready on http://127.0.0.1:$api_port, agents on tcp://127.0.0.1:$agent_port ($(elapsed_since "$t0"))"
}

# start_agent NAME PLATFORM: each agent has its own work dir and container storage.
start_agent() {
  local name="$1" platform="$2"
  local dir="$farm_dir/agents/$name"
  mkdir -p "$dir/work" "$dir/storage/run" "$dir/storage/graph"
  cat >"$dir/storage.conf" <<EOF
[storage]
driver = "vfs"
runroot = "$dir/storage/run"
graphroot = "$dir/storage/graph"
EOF
  open_log "$name"
  set_curve_flags "$name"
  spawn "$name" env \
    CONTAINERS_STORAGE_CONF="$dir/storage.conf" \
    CONTAINERS_REGISTRIES_CONF="$farm_dir/registries.conf" \
    BUILDAH_ISOLATION=chroot \
    "$build_dir/agent/manifold-agent" "${curve_flags[@]}" \
    --coordinator "tcp://127.0.0.1:$agent_port" \
    --id "$name" \
    --platform "$platform" \
    --slots "$slots" \
    --backend "$backend" \
    --metrics-listen 127.0.0.1:0 \
    --work-dir "$dir/work"
}

agents_online() {
  local body
  body="$(curl -sf --max-time 2 "http://127.0.0.1:$api_port/v1/agents")" || return 1
  jq -e --args '[.agents[]? | select(.state == "online") | .id] as $online
                | all($ARGS.positional[]; . as $n | $online | any(.[]; . == $n))' \
    "$@" <<<"$body" >/dev/null
}

wait_for_agents() {
  local deadline=$((SECONDS + 60)) name
  until agents_online "$@"; do
    for name in "$@"; do
      if ! is_ours "$(pid_of "$name")" "$farm_dir"; then
        current_log="$logs/$name.log"
        die "agent $name exited before coming online"
      fi
    done
    if [ "$SECONDS" -ge "$deadline" ]; then
      current_log="$logs/coordinator.log"
      say "agents the coordinator lists: $(curl -sf --max-time 2 "http://127.0.0.1:$api_port/v1/agents" || echo '(no answer)')" >&2
      die "timed out after 60 s waiting for agents $* to be online"
    fi
    sleep 0.2
  done
}

write_env() {
  {
    if [ "$only_services" != 1 ]; then
      echo "MANIFOLD_SERVER=http://127.0.0.1:$api_port"
    fi
    echo "MANIFOLD_REGISTRY=127.0.0.1:$registry_port"
    echo "MANIFOLD_DATABASE_URL=$database_url"
  } >"$farm_dir/farm.env.tmp"
  mv "$farm_dir/farm.env.tmp" "$farm_dir/farm.env"
}

# parse_agents: checks agents_spec ("NAME:PLATFORM ...") into agent_list (names in order)
# and agent_platform[NAME].
declare -a agent_list=()
declare -A agent_platform=()
parse_agents() {
  local entry name platform
  agent_list=()
  agent_platform=()
  for entry in $agents_spec; do
    name="${entry%%:*}"
    platform="${entry#*:}"
    if [ "$name" = "$entry" ] || [ -z "$platform" ]; then
      die "MANIFOLD_FARM_AGENTS: '$entry' is not NAME:PLATFORM (e.g. amd64-2:linux/amd64)"
    fi
    [[ "$name" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] ||
      die "MANIFOLD_FARM_AGENTS: agent name '$name' may hold only letters, digits, '.', '_' and '-'"
    [[ "$platform" =~ ^[a-z0-9/,._-]+$ ]] ||
      die "MANIFOLD_FARM_AGENTS: '$platform' (agent $name) is not a platform list such as linux/arm64"
    case " ${services[*]} base-image " in
      *" $name "*) die "MANIFOLD_FARM_AGENTS: '$name' names a farm service, not an agent" ;;
    esac
    [ -z "${agent_platform[$name]:-}" ] || die "MANIFOLD_FARM_AGENTS: agent '$name' is listed twice"
    agent_list+=("$name")
    agent_platform[$name]="$platform"
  done
  if [ "${#agent_list[@]}" -eq 0 ] && [ "$only_services" != 1 ]; then
    die "MANIFOLD_FARM_AGENTS lists no agent"
  fi
}

# What `start` needs to start a process as `up` did: the farm's settings and the
# programs' MANIFOLD_* environment (heartbeats, attempts, drain grace, ...).
write_conf() {
  local var
  {
    echo "# Written by ops/farm.sh up; ops/farm.sh start restores it."
    printf 'pg_port=%q\nregistry_port=%q\napi_port=%q\nagent_port=%q\nmetrics_port=%q\n' \
      "$pg_port" "$registry_port" "$api_port" "$agent_port" "$metrics_port"
    printf 'slots=%q\nbuild_dir=%q\nagents_spec=%q\nonly_services=%q\nbackend=%q\nplaintext=%q\n' \
      "$slots" "$build_dir" "$agents_spec" "$only_services" "$backend" "$plaintext"
    printf 'registry_data=%q\n' "$registry_data"
    while IFS= read -r var; do
      case "$var" in
        MANIFOLD_FARM_*) ;;
        MANIFOLD_*) printf 'export %s=%q\n' "$var" "${!var}" ;;
      esac
    done < <(compgen -e)
  } >"$farm_dir/farm.conf.tmp"
  mv "$farm_dir/farm.conf.tmp" "$farm_dir/farm.conf"
}

load_conf() {
  [ -f "$farm_dir/farm.conf" ] || die "no $farm_dir/farm.conf: start the farm with $0 up first"
  # shellcheck source=/dev/null
  source "$farm_dir/farm.conf"
  database_url="postgresql://postgres@127.0.0.1:$pg_port/$database"
}

check_binaries() {
  local binary
  for binary in coordinator/manifold-coordinator agent/manifold-agent cli/manifold; do
    [ -x "$build_dir/$binary" ] || die "$build_dir/$binary not found: build first (ops/build.sh) or set MANIFOLD_BUILD_DIR"
  done
}

cmd_up() {
  local t0
  t0="$(date +%s%N)"
  [ "$(id -u)" -eq 0 ] || die "up needs root (PostgreSQL runs as the postgres user, buildah and binfmt need root)"
  local tool
  for tool in curl jq runuser setsid; do
    command -v "$tool" >/dev/null || die "$tool not found (ops/install-deps.sh)"
  done

  local native emulated
  case "$(uname -m)" in
    x86_64 | amd64) native=amd64 emulated=arm64 ;;
    aarch64 | arm64) native=arm64 emulated=amd64 ;;
    *) die "unsupported host architecture $(uname -m)" ;;
  esac
  parse_agents
  if [ "$only_services" != 1 ]; then
    check_binaries
  fi

  mkdir -p "$farm_dir"
  resolve_farm_dir
  stop_all
  collect_orphaned_pg_dirs
  # Checked before anything starts: a port taken by another program would otherwise make
  # a readiness probe talk to that program.
  require_free_port "$pg_port" MANIFOLD_FARM_PG_PORT
  require_free_port "$registry_port" MANIFOLD_FARM_REGISTRY_PORT
  if [ "$only_services" != 1 ]; then
    require_free_port "$api_port" MANIFOLD_FARM_API_PORT
    require_free_port "$agent_port" MANIFOLD_FARM_AGENT_PORT
    require_free_port "$metrics_port" MANIFOLD_FARM_METRICS_PORT
  fi
  mkdir -p "$logs" "$pids"
  touch "$farm_dir/.manifold-farm"
  database_url="postgresql://postgres@127.0.0.1:$pg_port/$database"
  write_conf

  trap 'on_up_exit $?' EXIT
  start_postgres
  start_registry
  current_log=""
  # The emulated agent and the base image's foreign RUN step need QEMU.
  "$repo/ops/binfmt.sh" >/dev/null || die "QEMU emulation for linux/$emulated is not available (ops/binfmt.sh)"
  start_base_image

  if [ "$only_services" != 1 ]; then
    [ "$plaintext" = 1 ] || make_keys
    start_coordinator
    local name
    for name in "${agent_list[@]}"; do
      start_agent "$name" "${agent_platform[$name]}"
    done
    current_log=""
    wait_for_agents "${agent_list[@]}"
    say "agents online (native linux/$native, emulated linux/$emulated):"
    print_agents "http://127.0.0.1:$api_port"
  fi

  write_env
  up_finished=1
  say "up in $(elapsed_since "$t0"): $farm_dir/farm.env"
  sed 's/^/  /' "$farm_dir/farm.env"
}

cmd_down() {
  if [ ! -d "$farm_dir" ]; then
    say "no farm in $farm_dir"
    return 0
  fi
  resolve_farm_dir
  [ "$(id -u)" -eq 0 ] || die "down needs root"
  mkdir -p "$logs"
  stop_all
  collect_orphaned_pg_dirs
  say "down ($farm_dir)"
}

# One line per agent the coordinator at URL lists.
print_agents() {
  local body
  body="$(curl -sf --max-time 5 "$1/v1/agents")" || return 1
  jq -r '.agents[]? | "  agent \(.id): \(.state), " +
    ([.platforms[]? | .platform + (if .emulated then " (emulated)" else "" end)] | join(", "))' <<<"$body"
}

cmd_status() {
  if [ ! -d "$farm_dir" ]; then
    say "no farm in $farm_dir"
    return 3
  fi
  resolve_farm_dir
  local name pid all_up=1 any=0
  local -a names
  local -A expected=()
  mapfile -t names < <(agent_names)
  # While the farm is up, a process stopped or killed by NAME (it has no pid file any more)
  # is listed as stopped.
  if [ -f "$farm_dir/farm.env" ] && [ -f "$farm_dir/farm.conf" ]; then
    load_conf
    parse_agents
    expected=([postgres]=1 [registry]=1)
    if [ "$only_services" != 1 ]; then
      expected[coordinator]=1
      local -a ordered=("${agent_list[@]}")
      for name in "${agent_list[@]}"; do expected[$name]=1; done
      for name in "${names[@]}"; do
        [ -n "${expected[$name]:-}" ] || ordered+=("$name")
      done
      names=("${ordered[@]}")
    fi
  fi
  for name in postgres registry coordinator "${names[@]}"; do
    [ -f "$pids/$name.pid" ] || [ -n "${expected[$name]:-}" ] || continue
    any=1
    pid="$(pid_of "$name")"
    if is_ours "$pid" "$(marker_of "$name")"; then
      printf '%-12s running  pid %s\n' "$name" "$pid"
    else
      printf '%-12s stopped  (log: %s)\n' "$name" "$logs/$name.log"
      all_up=0
    fi
  done
  if [ "$any" -eq 0 ]; then
    say "nothing running in $farm_dir"
    return 3
  fi
  if [ -f "$farm_dir/farm.env" ]; then
    sed 's/^/  /' "$farm_dir/farm.env"
    local server
    server="$(sed -n 's/^MANIFOLD_SERVER=//p' "$farm_dir/farm.env")"
    if [ -n "$server" ]; then
      print_agents "$server" || echo "  (the coordinator at $server does not answer /v1/agents)"
    fi
  fi
  [ "$all_up" -eq 1 ] || return 3
}

# The pid of NAME if it is running as part of this farm, else nothing.
running_pid() {
  local name="$1" pid data
  pid="$(pid_of "$name")"
  if [ "$name" = postgres ]; then
    data="$(pg_root)/data"
    if [ -f "$data/postmaster.pid" ]; then
      pid="$(head -n 1 "$data/postmaster.pid")"
    fi
  fi
  if is_ours "$pid" "$(marker_of "$name")"; then
    echo "$pid"
  fi
}

# Fails unless NAME is a process this farm runs: a service, a configured agent, or an agent
# that has a pid file (started by an older configuration).
check_name() {
  local name="$1"
  [ -n "$name" ] || die "which process? usage: $0 ${command:-start} NAME (postgres, registry, coordinator or an agent)"
  case " ${services[*]} " in *" $name "*) return 0 ;; esac
  [ -n "${agent_platform[$name]:-}" ] && return 0
  [ -f "$pids/$name.pid" ] && return 0
  die "no process '$name' in this farm: expected postgres, registry, coordinator${agent_list[*]:+ or an agent (${agent_list[*]})}"
}

# Loads what the farm was started with, for the commands that act on one process.
open_farm() {
  [ -d "$farm_dir" ] || die "no farm in $farm_dir"
  resolve_farm_dir
  [ "$(id -u)" -eq 0 ] || die "$command needs root"
  load_conf
  parse_agents
  mkdir -p "$logs" "$pids"
}

cmd_stop() {
  local name="$1" pid
  open_farm
  check_name "$name"
  pid="$(running_pid "$name")"
  if [ -z "$pid" ]; then
    rm -f "$pids/$name.pid"
    say "$name is not running"
    return 0
  fi
  if [ "$name" = postgres ]; then
    stop_postgres
  else
    stop_processes "$name"
  fi
  [ "$killed" -eq 0 ] || exit "$exit_killed"
}

cmd_kill() {
  local name="$1" pid deadline
  open_farm
  check_name "$name"
  pid="$(running_pid "$name")"
  if [ -z "$pid" ]; then
    rm -f "$pids/$name.pid"
    say "$name is not running"
    return 0
  fi
  kill_tree "$pid"
  deadline=$((SECONDS + 10))
  while is_ours "$pid" "$(marker_of "$name")"; do
    [ "$SECONDS" -lt "$deadline" ] || die "$name (pid $pid) is still there 10 s after SIGKILL"
    sleep 0.05
  done
  # Until its parent (init) reaps it, the dead process keeps its pid, and PostgreSQL
  # refuses to start while the pid in its lock file exists.
  while [ -e "/proc/$pid" ] && [ "$SECONDS" -lt "$deadline" ]; do
    sleep 0.05
  done
  [ ! -e "/proc/$pid" ] || say "$name (pid $pid) is dead but not yet reaped by its parent"
  rm -f "$pids/$name.pid"
  say "killed $name (pid $pid) and the processes it started"
}

start_finished=0
start_name=""
on_start_exit() {
  local status="$1" name="$2"
  [ "$start_finished" -eq 1 ] && return
  [ "$status" -ne 0 ] || return
  print_log_tail
  if [ "$keep_on_failure" = 1 ]; then
    echo "farm: start $name failed; left running (MANIFOLD_FARM_KEEP_ON_FAILURE=1)" >&2
  elif [ -n "$(running_pid "$name")" ]; then
    echo "farm: start $name failed; stopping it" >&2
    if [ "$name" = postgres ]; then stop_postgres >&2; else stop_processes "$name" >&2; fi
  fi
}

# wait_for_welcome NAME OFFSET: until the agent's log after byte OFFSET shows that the
# coordinator welcomed it (the agent logs "connected to ... (session ...)"). The API alone
# cannot tell: right after a restart it may still list the previous process as online.
wait_for_welcome() {
  local name="$1" offset="$2" deadline=$((SECONDS + 60))
  until tail -c +"$((offset + 1))" "$logs/$name.log" | grep -q "connected to .* (session "; do
    is_ours "$(pid_of "$name")" "$farm_dir" || die "agent $name exited before the coordinator welcomed it"
    [ "$SECONDS" -lt "$deadline" ] || die "timed out after 60 s waiting for the coordinator to welcome agent $name"
    sleep 0.1
  done
}

cmd_start() {
  local name="$1" pid offset t0
  t0="$(date +%s%N)"
  open_farm
  check_name "$name"
  pid="$(running_pid "$name")"
  [ -z "$pid" ] || die "$name is already running (pid $pid); stop it first: $0 stop $name"
  fresh_logs=0
  start_name="$name" # the trap runs after this function's locals are gone
  trap 'on_start_exit $? "$start_name"' EXIT
  case "$name" in
    postgres)
      require_free_port "$pg_port" MANIFOLD_FARM_PG_PORT
      start_postgres
      ;;
    registry)
      require_free_port "$registry_port" MANIFOLD_FARM_REGISTRY_PORT
      start_registry
      ;;
    coordinator)
      check_binaries
      require_free_port "$api_port" MANIFOLD_FARM_API_PORT
      require_free_port "$agent_port" MANIFOLD_FARM_AGENT_PORT
      require_free_port "$metrics_port" MANIFOLD_FARM_METRICS_PORT
      start_coordinator
      ;;
    *)
      [ -n "${agent_platform[$name]:-}" ] || die "agent $name is not in this farm's MANIFOLD_FARM_AGENTS ($agents_spec)"
      check_binaries
      offset="$(stat -c %s "$logs/$name.log" 2>/dev/null || echo 0)"
      start_agent "$name" "${agent_platform[$name]}"
      if [ -n "$(running_pid coordinator)" ]; then
        wait_for_welcome "$name" "$offset"
        say "agent $name online ($(elapsed_since "$t0"))"
      else
        say "agent $name started; the coordinator is not running, so it is not online yet"
      fi
      ;;
  esac
  start_finished=1
}

cmd_purge() {
  cmd_down
  [ -d "$farm_dir" ] || return 0
  [ -f "$farm_dir/.manifold-farm" ] || die "$farm_dir does not look like a farm dir (no .manifold-farm): not deleting it"
  if [ -L "$farm_dir/postgres" ]; then
    rm -rf "$(readlink -f "$farm_dir/postgres")"
  fi
  rm -rf "$farm_dir"
  say "purged $farm_dir"
}

usage() {
  echo "usage: $0 up|down|status|purge, or $0 stop|kill|start NAME" >&2
  exit 2
}

resolve_farm_dir
[[ "$stop_timeout" =~ ^[0-9]+$ ]] ||
  die "MANIFOLD_FARM_STOP_TIMEOUT must be a number of seconds, got '$stop_timeout'"
command="${1:-}"
case "$command" in
  up | down | status | purge)
    [ "$#" -eq 1 ] || usage
    "cmd_$command"
    ;;
  stop | kill | start)
    [ "$#" -eq 2 ] || usage
    "cmd_$command" "$2"
    ;;
  *) usage ;;
esac
