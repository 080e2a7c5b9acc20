# shellcheck shell=bash
# The farm's settings: ports, directories and agents from the MANIFOLD_FARM_* environment,
# the files that record them (farm.conf for `start`, farm.env for clients) and the checks
# made before anything starts. Sourced by ops/farm.sh (which sets repo first).

farm_dir="${MANIFOLD_FARM_DIR:-$repo/.farm}"
build_dir="${MANIFOLD_BUILD_DIR:-$repo/build}"
pg_port="${MANIFOLD_FARM_PG_PORT:-55432}"
registry_port="${MANIFOLD_FARM_REGISTRY_PORT:-5000}"
registry_data="${MANIFOLD_FARM_REGISTRY_DATA:-}"  # "": FARM_DIR/registry/data
api_port="${MANIFOLD_FARM_API_PORT:-7080}"
agent_port="${MANIFOLD_FARM_AGENT_PORT:-7081}"
metrics_port="${MANIFOLD_FARM_METRICS_PORT:-7082}"
# A second coordinator on the same database (MANIFOLD_FARM_COORDINATORS=2): a standby that
# takes over if the first dies, and whose API serves too (README: Highly available).
coordinators="${MANIFOLD_FARM_COORDINATORS:-1}"
api_port_2="${MANIFOLD_FARM_API_PORT_2:-7090}"
agent_port_2="${MANIFOLD_FARM_AGENT_PORT_2:-7091}"
metrics_port_2="${MANIFOLD_FARM_METRICS_PORT_2:-7092}"
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
readonly services=(coordinator coordinator-2 registry postgres prometheus)

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
  prom_dir="$farm_dir/prometheus"
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

# The coordinators this farm runs.
coordinator_names() {
  echo coordinator
  [ "$coordinators" != 2 ] || echo coordinator-2
}

# set_coordinator_ports NAME: api, agent and metrics ports of the coordinator NAME.
set_coordinator_ports() {
  if [ "$1" = coordinator-2 ]; then
    c_api_port="$api_port_2" c_agent_port="$agent_port_2" c_metrics_port="$metrics_port_2"
  else
    c_api_port="$api_port" c_agent_port="$agent_port" c_metrics_port="$metrics_port"
  fi
}

# The coordinators' API URLs, or their agent endpoints, comma-separated: what clients
# and agents are given.
coordinator_urls() {
  local urls="http://127.0.0.1:$api_port"
  [ "$coordinators" != 2 ] || urls+=",http://127.0.0.1:$api_port_2"
  echo "$urls"
}
coordinator_endpoints() {
  local endpoints="tcp://127.0.0.1:$agent_port"
  [ "$coordinators" != 2 ] || endpoints+=",tcp://127.0.0.1:$agent_port_2"
  echo "$endpoints"
}

# require_free_coordinator_ports NAME
require_free_coordinator_ports() {
  local suffix=""
  [ "$1" != coordinator-2 ] || suffix=_2
  set_coordinator_ports "$1"
  require_free_port "$c_api_port" "MANIFOLD_FARM_API_PORT$suffix"
  require_free_port "$c_agent_port" "MANIFOLD_FARM_AGENT_PORT$suffix"
  require_free_port "$c_metrics_port" "MANIFOLD_FARM_METRICS_PORT$suffix"
}

# write_atomically FILE: stdin to FILE through a temporary file beside it and a rename, so
# a reader (a client sourcing farm.env, Prometheus watching its target files) sees the old
# file or the new one, never half of one. The temporary name starts with a dot, so it
# matches no file_sd pattern.
write_atomically() {
  local partial
  partial="$(dirname "$1")/.$(basename "$1").tmp"
  cat >"$partial"
  mv -f "$partial" "$1"
}

write_env() {
  {
    if [ "$only_services" != 1 ]; then
      echo "MANIFOLD_SERVER=$(coordinator_urls)"
    fi
    echo "MANIFOLD_REGISTRY=127.0.0.1:$registry_port"
    echo "MANIFOLD_DATABASE_URL=$database_url"
  } | write_atomically "$farm_dir/farm.env"
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
    printf 'coordinators=%q\napi_port_2=%q\nagent_port_2=%q\nmetrics_port_2=%q\n' \
      "$coordinators" "$api_port_2" "$agent_port_2" "$metrics_port_2"
    while IFS= read -r var; do
      case "$var" in
        MANIFOLD_FARM_*) ;;
        MANIFOLD_*) printf 'export %s=%q\n' "$var" "${!var}" ;;
      esac
    done < <(compgen -e)
  } | write_atomically "$farm_dir/farm.conf"
}

# save_agents_spec: farm.conf's agents become agents_spec (add-agent grew it), the rest as is.
save_agents_spec() {
  local line
  while IFS= read -r line; do
    case "$line" in
      agents_spec=*) printf 'agents_spec=%q\n' "$agents_spec" ;;
      *) printf '%s\n' "$line" ;;
    esac
  done <"$farm_dir/farm.conf" | write_atomically "$farm_dir/farm.conf"
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
