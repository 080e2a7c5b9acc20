#!/usr/bin/env bash
# The autoscaling loop on one machine: sizes the linux/arm64 agents of a local farm
# (ops/farm.sh) the way KEDA sizes the agent Deployment or the ASG feeder sizes the Auto
# Scaling group, with the same query, bounds, steps and delays (scaling.env) and the same
# decision (scaling.sh).
#
# Every MANIFOLD_SCALE_POLL seconds it reads MANIFOLD_SCALE_QUERY through Prometheus's
# HTTP API (/api/v1/query, as KEDA does) and clamps it to [MANIFOLD_SCALE_MIN,
# MANIFOLD_SCALE_MAX]:
#   - above the agents online: starts up to MANIFOLD_SCALE_OUT_STEP new ones
#     (ops/farm.sh add-agent PREFIX-N PLATFORM);
#   - below: once the highest count asked for during the last MANIFOLD_SCALE_IN_DELAY
#     seconds is below too (the HPA's stabilization window), drains at most
#     MANIFOLD_SCALE_IN_STEP agents per MANIFOLD_SCALE_IN_PERIOD seconds, only agents the
#     coordinator reports idle (GET /v1/agents?platform=P&idle=true), with
#     POST /v1/agents/ID/drain: one that took a job meanwhile finishes it, then exits, and
#     the scaler removes it from the farm (ops/farm.sh remove-agent ID: its Prometheus
#     target goes).
# No answer or no series from Prometheus changes nothing (KEDA's ignoreNullValues: false).
# It manages the agents named PREFIX-N (MANIFOLD_SCALE_AGENT_PREFIX, default the
# platform's architecture, e.g. arm64-1, arm64-2); others offering the platform are left
# alone. SIGTERM or SIGINT stops it; the agents stay as they are.
#
# Env: the MANIFOLD_SCALE_* parameters of scaling.env (defaults there);
#   MANIFOLD_FARM_DIR (the farm, as for ops/farm.sh; default <repo>/.farm);
#   MANIFOLD_PROMETHEUS_URL (default http://127.0.0.1:MANIFOLD_FARM_PROMETHEUS_PORT, the
#     farm's: ops/farm.sh start prometheus);
#   MANIFOLD_SERVER (the coordinator's API; default the first URL in FARM_DIR/farm.env).
# Needs curl, jq and awk, and root like ops/farm.sh.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
repo="$(cd "$here/../.." && pwd -P)"
for tool in curl jq awk; do
  command -v "$tool" >/dev/null || {
    echo "local-scaler: $tool not found (ops/install-deps.sh)" >&2
    exit 1
  }
done
# shellcheck source=ops/autoscaling/scaling.sh
source "$here/scaling.sh"

log() { echo "local-scaler: $(date -u +%H:%M:%S) $*"; }

platform="$MANIFOLD_SCALE_PLATFORM"
prefix="${MANIFOLD_SCALE_AGENT_PREFIX:-${platform##*/}}"
farm_dir="${MANIFOLD_FARM_DIR:-$repo/.farm}"
export MANIFOLD_FARM_DIR="$farm_dir"
prometheus="${MANIFOLD_PROMETHEUS_URL:-http://127.0.0.1:${MANIFOLD_FARM_PROMETHEUS_PORT:-9099}}"
server="${MANIFOLD_SERVER:-}"
if [ -z "$server" ]; then
  [ -f "$farm_dir/farm.env" ] ||
    scaling_die "no $farm_dir/farm.env: start the farm first (ops/farm.sh up) or set MANIFOLD_SERVER"
  server="$(sed -n 's/^MANIFOLD_SERVER=//p' "$farm_dir/farm.env")"
fi
server="${server%%,*}" # a standby redirects to the leader
state="$(mktemp -d)"   # the scale-in window: each run starts with the fleet as found

# The ids and states of this scaler's agents the coordinator lists, "ID STATE" per line;
# with "--data-urlencode idle=true" only the idle ones; fails when it does not answer.
agents() {
  curl -sfL --max-time 5 -G "$server/v1/agents" --data-urlencode "platform=$platform" "$@" |
    jq -r --arg prefix "$prefix-" '.agents[] | select(.id | startswith($prefix)) | "\(.id) \(.state)"'
}

declare -A draining=() # agents this scaler drained that have not left yet

poll() {
  local now listing desired current name decision target change window_max i added removed id
  now="$(date +%s)"
  if ! listing="$(agents)"; then
    log "the coordinator at $server does not answer GET /v1/agents (is the farm up? ops/farm.sh status); nothing changes"
    return
  fi
  # A drained agent says goodbye and exits; then it leaves the farm and Prometheus.
  for name in "${!draining[@]}"; do
    if ! grep -q "^$name " <<<"$listing"; then
      "$repo/ops/farm.sh" remove-agent "$name" >/dev/null || true
      unset "draining[$name]"
      log "agent $name drained and removed"
    fi
  done
  current="$(grep -c ' online$' <<<"$listing" || true)"
  if ! desired="$(scaling_read_desired "$prometheus")"; then
    log "no value for $MANIFOLD_SCALE_QUERY from Prometheus at $prometheus (is it running, and scraping the coordinator? ops/farm.sh start prometheus; see $prometheus/targets); nothing changes (agents: $current)"
    return
  fi
  decision="$(scaling_decide "$state" "$now" "$current" "$desired")"
  read -r target change window_max <<<"$decision"

  if ((change > 0)); then
    added=0
    for ((i = 1; added < change; i++)); do
      name="$prefix-$i"
      grep -q "^$name " <<<"$listing" && continue
      [ -z "${draining[$name]:-}" ] || continue
      if ! "$repo/ops/farm.sh" add-agent "$name" "$platform" >/dev/null; then
        log "could not add agent $name (see $farm_dir/logs/$name.log); trying again next poll"
        break
      fi
      added=$((added + 1))
      log "desired $desired, target $target: $((current + added)) agents; $name online"
    done
  elif ((change < 0)); then
    removed=0
    for id in $(agents --data-urlencode idle=true | awk '{ print $1 }'); do
      ((removed < -change)) || break
      curl -sfL --max-time 5 -X POST "$server/v1/agents/$id/drain" >/dev/null || continue
      draining[$id]=1
      removed=$((removed + 1))
      log "desired $desired, at most $window_max for ${MANIFOLD_SCALE_IN_DELAY}s: draining idle agent $id"
    done
    ((removed == 0)) || scaling_scaled_in "$state" "$now"
  fi
}

trap 'rm -rf "$state"' EXIT
trap 'log "stopped"; exit 0' TERM INT
log "following $MANIFOLD_SCALE_QUERY at $prometheus for agents $prefix-N ($platform) of $farm_dir:" \
  "min $MANIFOLD_SCALE_MIN, max $MANIFOLD_SCALE_MAX, poll ${MANIFOLD_SCALE_POLL}s," \
  "out +$MANIFOLD_SCALE_OUT_STEP per poll, in -$MANIFOLD_SCALE_IN_STEP per ${MANIFOLD_SCALE_IN_PERIOD}s after ${MANIFOLD_SCALE_IN_DELAY}s"
while :; do
  poll
  sleep "$MANIFOLD_SCALE_POLL" &
  wait $! || true
done
