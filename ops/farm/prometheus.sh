# shellcheck shell=bash
# Prometheus for the farm: file_sd target files for the coordinators and agents the farm
# runs (agents pick free ports for their /metrics, so no fixed list can name them), copies
# of the shipped ops/prometheus/prometheus.yml and alerts.yml that read those files, and
# Prometheus itself (`ops/farm.sh start prometheus`). Sourced by ops/farm.sh.
#
# FARM_DIR/prometheus/ holds:
#   prometheus.yml, alerts.yml  the shipped files; up and `start prometheus` copy them
#   targets/coordinators-farm.yml  every coordinator's --metrics-listen, from up to down
#   targets/agents-NAME.yml     one agent's address, labelled agent=NAME, written once it
#       serves /metrics. `stop NAME` removes it (a drained agent leaves the fleet, as an
#       autoscaler deregisters it); `kill NAME` keeps it, so a lost host shows as a down
#       target and ManifoldAgentDown goes pending, as in production. down removes them all.
#   data/                       Prometheus's storage, kept across down and up
# Prometheus watches targets/ and rereads a file as soon as it is renamed into place.

prom_port="${MANIFOLD_FARM_PROMETHEUS_PORT:-9099}"
prom_interval="${MANIFOLD_FARM_PROMETHEUS_INTERVAL:-}" # "": the shipped file's intervals

# write_prometheus_config: FARM_DIR/prometheus/prometheus.yml and alerts.yml from the
# shipped files; with MANIFOLD_FARM_PROMETHEUS_INTERVAL, every scrape and evaluation
# interval is that instead (alerts' `for` durations stay as shipped).
write_prometheus_config() {
  local set_interval=""
  if [ -n "$prom_interval" ]; then
    [[ "$prom_interval" =~ ^[1-9][0-9]*(ms|s|m)$ ]] ||
      die "MANIFOLD_FARM_PROMETHEUS_INTERVAL must be a duration such as 1s or 15s, got '$prom_interval'"
    set_interval="s/^\([[:space:]]*\(scrape\|evaluation\)_interval:\).*/\1 $prom_interval/"
  fi
  mkdir -p "$prom_dir/targets"
  {
    echo "# Written by ops/farm.sh from ops/prometheus/prometheus.yml; targets/ lists this farm's processes."
    sed "$set_interval" "$repo/ops/prometheus/prometheus.yml"
  } | write_atomically "$prom_dir/prometheus.yml"
  write_atomically "$prom_dir/alerts.yml" <"$repo/ops/prometheus/alerts.yml"
}

write_coordinator_targets() {
  local name
  {
    echo "# Written by ops/farm.sh up: this farm's coordinators."
    for name in $(coordinator_names); do
      set_coordinator_ports "$name"
      printf -- '- targets: ["127.0.0.1:%s"]\n  labels:\n    coordinator: %s\n' "$c_metrics_port" "$name"
    done
  } | write_atomically "$prom_dir/targets/coordinators-farm.yml"
}

# write_agent_target NAME OFFSET: waits until the agent's log after byte OFFSET announces
# where it serves /metrics ("metrics on HOST:PORT"), then lists that address in
# targets/agents-NAME.yml.
write_agent_target() {
  local name="$1" offset="$2" address deadline=$((SECONDS + 60))
  while :; do
    address="$(tail -c +"$((offset + 1))" "$logs/$name.log" |
      grep -oE 'metrics on [^ "]+:[0-9]+' | tail -n 1 | cut -d' ' -f3)" || true
    [ -z "$address" ] || break
    is_ours "$(pid_of "$name")" "$farm_dir" || die "agent $name exited before serving its metrics"
    [ "$SECONDS" -lt "$deadline" ] ||
      die "timed out after 60 s waiting for agent $name to log 'metrics on ADDRESS'"
    sleep 0.1
  done
  mkdir -p "$prom_dir/targets"
  printf -- '# Written by ops/farm.sh: agent %s.\n- targets: ["%s"]\n  labels:\n    agent: %s\n' \
    "$name" "$address" "$name" | write_atomically "$prom_dir/targets/agents-$name.yml"
}

remove_agent_target() {
  rm -f "$prom_dir/targets/agents-$1.yml"
}

remove_targets() {
  rm -f "$prom_dir/targets/"*.yml
}

start_prometheus() {
  local t0
  t0="$(date +%s%N)"
  command -v prometheus >/dev/null || die "prometheus not found (ops/install-deps.sh installs Debian's prometheus)"
  require_free_port "$prom_port" MANIFOLD_FARM_PROMETHEUS_PORT
  write_prometheus_config
  mkdir -p "$prom_dir/data"
  open_log prometheus
  spawn prometheus prometheus --config.file="$prom_dir/prometheus.yml" \
    --storage.tsdb.path="$prom_dir/data" \
    --web.listen-address="127.0.0.1:$prom_port"
  wait_for 60 "Prometheus on 127.0.0.1:$prom_port" prometheus \
    curl -sf --max-time 2 "http://127.0.0.1:$prom_port/-/ready"
  say "prometheus ready on http://127.0.0.1:$prom_port, scraping the targets in $prom_dir/targets ($(elapsed_since "$t0"))"
}
