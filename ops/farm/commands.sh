# shellcheck shell=bash
# The commands of ops/farm.sh: up, down, status, purge, and stop, kill and start for one
# process. Sourced by ops/farm.sh, which calls cmd_NAME.

readonly exit_killed=4 # `stop NAME` had to SIGKILL
up_finished=0

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
    local coordinator
    for coordinator in $(coordinator_names); do require_free_coordinator_ports "$coordinator"; done
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
    write_prometheus_config
    write_coordinator_targets
    start_coordinator coordinator
    # The first leads; the second waits as its standby.
    [ "$coordinators" != 2 ] || start_coordinator coordinator-2
    local name
    for name in "${agent_list[@]}"; do
      start_agent "$name" "${agent_platform[$name]}"
    done
    current_log=""
    wait_for_agents "${agent_list[@]}"
    for name in "${agent_list[@]}"; do
      write_agent_target "$name" 0
    done
    say "agents online (native linux/$native, emulated linux/$emulated):"
    print_agents "$(coordinator_urls)"
  fi

  write_env
  up_finished=1
  say "up in $(elapsed_since "$t0"): $farm_dir/farm.env"
  sed 's/^/  /' "$farm_dir/farm.env"
  if [ "$only_services" != 1 ]; then
    say "Prometheus targets in $prom_dir/targets; see them with: $0 start prometheus"
  fi
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
      [ "$coordinators" != 2 ] || expected[coordinator-2]=1
      local -a ordered=("${agent_list[@]}")
      for name in "${agent_list[@]}"; do expected[$name]=1; done
      for name in "${names[@]}"; do
        [ -n "${expected[$name]:-}" ] || ordered+=("$name")
      done
      names=("${ordered[@]}")
    fi
  fi
  for name in postgres registry coordinator coordinator-2 "${names[@]}" prometheus; do
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

# Fails unless NAME is a process this farm runs: a service, a configured agent, or an agent
# that has a pid file (started by an older configuration).
check_name() {
  local name="$1"
  [ -n "$name" ] || die "which process? usage: $0 ${command:-start} NAME (postgres, registry, coordinator or an agent)"
  case " ${services[*]} " in *" $name "*) return 0 ;; esac
  [ -n "${agent_platform[$name]:-}" ] && return 0
  [ -f "$pids/$name.pid" ] && return 0
  die "no process '$name' in this farm: expected postgres, registry, coordinator, coordinator-2, prometheus${agent_list[*]:+ or an agent (${agent_list[*]})}"
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

# open_process NAME: opens the farm for a command on the process NAME and sets
# process_pid to its pid; when NAME is not running, drops its stale pid file, says so and
# sets process_pid to "".
process_pid=""
open_process() {
  local name="$1"
  open_farm
  check_name "$name"
  process_pid="$(running_pid "$name")"
  if [ -z "$process_pid" ]; then
    rm -f "$pids/$name.pid"
    say "$name is not running"
  fi
}

cmd_stop() {
  local name="$1"
  open_process "$name"
  if [ "$name" = postgres ]; then
    [ -z "$process_pid" ] || stop_postgres
  elif [ -n "$process_pid" ]; then
    stop_processes "$name"
  fi
  # A stopped agent has left the fleet, so Prometheus stops scraping it; removed once it
  # exited, so that its drain shows in its metrics. (A killed agent stays listed, down.)
  case " ${services[*]} " in
    *" $name "*) ;;
    *) remove_agent_target "$name" ;;
  esac
  [ "$killed" -eq 0 ] || exit "$exit_killed"
}

cmd_kill() {
  local name="$1" pid deadline
  open_process "$name"
  pid="$process_pid"
  [ -n "$pid" ] || return 0
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
    prometheus)
      start_prometheus
      ;;
    coordinator | coordinator-2)
      [ "$name" = coordinator ] || [ "$coordinators" = 2 ] ||
        die "this farm runs one coordinator (MANIFOLD_FARM_COORDINATORS=2 at up runs two)"
      check_binaries
      require_free_coordinator_ports "$name"
      start_coordinator "$name"
      ;;
    *)
      [ -n "${agent_platform[$name]:-}" ] || die "agent $name is not in this farm's MANIFOLD_FARM_AGENTS ($agents_spec)"
      check_binaries
      offset="$(stat -c %s "$logs/$name.log" 2>/dev/null || echo 0)"
      start_agent "$name" "${agent_platform[$name]}"
      if [ -n "$(running_pid coordinator)$(running_pid coordinator-2)" ]; then
        wait_for_welcome "$name" "$offset"
        say "agent $name online ($(elapsed_since "$t0"))"
      else
        say "agent $name started; the coordinator is not running, so it is not online yet"
      fi
      write_agent_target "$name" "$offset"
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

# add-agent NAME PLATFORM: an agent the farm did not start with (what the local autoscaler,
# ops/autoscaling/local-scaler.sh, calls to scale out): its key pair joins the
# coordinator's allow-list (reloaded with SIGHUP), NAME:PLATFORM joins farm.conf's agents,
# and it starts as `start NAME` would, target file included. A NAME the farm knows for the
# same PLATFORM (stopped, or drained) just starts again.
cmd_add_agent() {
  local name="$1" platform="$2"
  open_farm
  [ "$only_services" != 1 ] || die "this farm runs no coordinator (it was started with MANIFOLD_FARM_ONLY_SERVICES=1)"
  if [ -z "${agent_platform[$name]:-}" ]; then
    agents_spec+=" $name:$platform"
    parse_agents # checks the name and the platform
    [ "$plaintext" = 1 ] || allow_agent_key "$name"
    save_agents_spec
  elif [ "${agent_platform[$name]}" != "$platform" ]; then
    die "agent $name is already in this farm for ${agent_platform[$name]}; add $platform under another name"
  fi
  cmd_start "$name"
}

# remove-agent NAME: stops the agent (it drains first, as `stop NAME`) and drops it from
# farm.conf's agents, so `status` no longer expects it; what the local autoscaler calls
# for an agent it drained. Its key stays allowed, so `add-agent NAME PLATFORM` can bring it
# back. Exit 4 when it had to be killed, as `stop`.
cmd_remove_agent() {
  local name="$1" entry spec="" status=0
  open_farm
  [ -n "${agent_platform[$name]:-}" ] || die "no agent '$name' in this farm's agents ($agents_spec)"
  [ "${#agent_list[@]}" -gt 1 ] || die "agent $name is this farm's last agent; stop it instead: $0 stop $name"
  (cmd_stop "$name") || status=$?
  [ "$status" -eq 0 ] || [ "$status" -eq "$exit_killed" ] || exit "$status"
  for entry in $agents_spec; do
    [ "${entry%%:*}" = "$name" ] || spec+="${spec:+ }$entry"
  done
  agents_spec="$spec"
  save_agents_spec
  say "removed agent $name from the farm"
  exit "$status"
}
