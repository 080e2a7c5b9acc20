# shellcheck shell=bash
# manifold's own processes in the farm: CURVE keys, the coordinator, the agents, and
# waiting until the coordinator lists or welcomes them. Sourced by ops/farm.sh.

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

# start_coordinator [NAME]: the coordinator, or coordinator-2. Both share the key pair, the
# database and the state dir (the build contexts), as on two hosts with a shared mount.
start_coordinator() {
  local name="${1:-coordinator}" t0 role
  t0="$(date +%s%N)"
  set_coordinator_ports "$name"
  open_log "$name"
  mkdir -p "$farm_dir/coordinator"
  set_curve_flags coordinator
  spawn "$name" "$build_dir/coordinator/manifold-coordinator" "${curve_flags[@]}" \
    --database-url "$database_url" \
    --api-listen "127.0.0.1:$c_api_port" \
    --agent-listen "tcp://127.0.0.1:$c_agent_port" \
    --public-url "http://127.0.0.1:$c_api_port" \
    --metrics-listen "127.0.0.1:$c_metrics_port" \
    --leader-name "$name" \
    --state-dir "$farm_dir/coordinator"
  wait_for 60 "the $name's /readyz on 127.0.0.1:$c_api_port" "$name" \
    curl -sf --max-time 2 "http://127.0.0.1:$c_api_port/readyz"
  role="$(curl -sf --max-time 2 "http://127.0.0.1:$c_api_port/readyz" | sed 's/^ready: //')" || role=""
  say "$name ready on http://127.0.0.1:$c_api_port, agents on tcp://127.0.0.1:$c_agent_port, $role ($(elapsed_since "$t0"))"
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
    "$build_dir/agent/manifold-agent" "${curve_flags[@]}" \
    --coordinator "$(coordinator_endpoints)" \
    --id "$name" \
    --platform "$platform" \
    --slots "$slots" \
    --backend "$backend" \
    --metrics-listen 127.0.0.1:0 \
    --work-dir "$dir/work"
}

# GET /v1/agents from the first coordinator that answers (a standby redirects to the leader).
agents_json() {
  local url
  for url in ${1//,/ }; do
    curl -sfL --max-time 2 "$url/v1/agents" && return 0
  done
  return 1
}

agents_online() {
  local body
  body="$(agents_json "$(coordinator_urls)")" || return 1
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
      say "agents the coordinator lists: $(agents_json "$(coordinator_urls)" || echo '(no answer)')" >&2
      die "timed out after 60 s waiting for agents $* to be online"
    fi
    sleep 0.2
  done
}

# One line per agent the coordinator at URL (or the first of a comma-separated list to
# answer) lists.
print_agents() {
  local body
  body="$(agents_json "$1")" || return 1
  jq -r '.agents[]? | "  agent \(.id): \(.state), " +
    ([.platforms[]? | .platform + (if .emulated then " (emulated)" else "" end)] | join(", "))' <<<"$body"
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

# allow_agent_key NAME: a key pair for agent NAME (kept if it has one), its public key in the
# coordinator's allow-list, and every running coordinator reloaded (SIGHUP), waited for
# until its log says so, so the agent's first connection is not refused.
allow_agent_key() {
  local name="$1" keys="$farm_dir/keys" coordinator pid deadline
  local -A offsets=()
  [ -f "$keys/$name.key" ] || "$build_dir/cli/manifold" keygen "$keys/$name" >/dev/null || die "manifold keygen failed"
  grep -qxF "$(cat "$keys/$name.pub")" "$keys/agent-keys" || cat "$keys/$name.pub" >>"$keys/agent-keys"
  for coordinator in $(coordinator_names); do
    pid="$(running_pid "$coordinator")"
    [ -n "$pid" ] || continue
    offsets[$coordinator]="$(stat -c %s "$logs/$coordinator.log" 2>/dev/null || echo 0)"
    kill -HUP "$pid"
  done
  deadline=$((SECONDS + 30))
  for coordinator in "${!offsets[@]}"; do
    until tail -c +"$((${offsets[$coordinator]} + 1))" "$logs/$coordinator.log" | grep -q "reloaded the agent key list"; do
      [ "$SECONDS" -lt "$deadline" ] || die "timed out after 30 s waiting for the $coordinator to reload $keys/agent-keys"
      sleep 0.05
    done
  done
}
