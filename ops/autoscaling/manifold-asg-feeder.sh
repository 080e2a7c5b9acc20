#!/usr/bin/env bash
# Feeds an Auto Scaling group of agents the coordinator's manifold_desired_agents for one
# platform; run every MANIFOLD_SCALE_POLL seconds (manifold-asg-feeder.timer) wherever
# Prometheus, the coordinator's API and the AWS API are reachable. It reads the desired
# count through Prometheus with the KEDA ScaledObject's query and decides as KEDA's HPA
# and the local scaler do (scaling.sh, parameters in scaling.env installed beside it):
#
# Scale-out: set-desired-capacity up to the desired count, at most MANIFOLD_SCALE_OUT_STEP
# more per run (within MANIFOLD_SCALE_MIN/MAX and the group's min and max).
# Scale-in never lowers the desired capacity, which would let the group pick any
# instance, busy or not. Once the highest count asked for during MANIFOLD_SCALE_IN_DELAY
# seconds is below the group's size, it picks agents the coordinator reports idle
# (GET /v1/agents?platform=P&idle=true: no running job, not draining) and terminates
# at most MANIFOLD_SCALE_IN_STEP of exactly those instances per MANIFOLD_SCALE_IN_PERIOD
# with --should-decrement-desired-capacity; the lifecycle hook still drains each one, so
# an agent that took a job in the meantime finishes it first. Agent ids must be the EC2
# instance ids (MANIFOLD_AGENT_ID in the instances' user data).
#
# Env: MANIFOLD_ASG_NAME (required), the MANIFOLD_SCALE_* parameters (scaling.env),
#   MANIFOLD_PROMETHEUS_URL (default http://127.0.0.1:9090, a Prometheus scraping the
#   coordinator), MANIFOLD_SERVER (default http://127.0.0.1:7080, the coordinator's API),
#   MANIFOLD_FEEDER_STATE (default ${STATE_DIRECTORY:-/var/lib/manifold-asg-feeder}: the
#   scale-in window).
# Needs curl, jq, awk and the AWS CLI (autoscaling:DescribeAutoScalingGroups,
# SetDesiredCapacity, TerminateInstanceInAutoScalingGroup).
set -euo pipefail

# shellcheck source=ops/autoscaling/scaling.sh
source "$(dirname "${BASH_SOURCE[0]}")/scaling.sh"

group="${MANIFOLD_ASG_NAME:?set MANIFOLD_ASG_NAME to the agents Auto Scaling group}"
platform="$MANIFOLD_SCALE_PLATFORM"
prometheus="${MANIFOLD_PROMETHEUS_URL:-http://127.0.0.1:9090}"
server="${MANIFOLD_SERVER:-http://127.0.0.1:7080}"
state="${MANIFOLD_FEEDER_STATE:-${STATE_DIRECTORY:-/var/lib/manifold-asg-feeder}}"

log() { echo "manifold-asg-feeder: $*"; }

desired="$(scaling_read_desired "$prometheus")" || {
  # No answer or no series: leave the group alone rather than guess.
  log "no value for $MANIFOLD_SCALE_QUERY from Prometheus at $prometheus; not changing $group" >&2
  exit 1
}

read -r min max current < <(aws autoscaling describe-auto-scaling-groups \
  --auto-scaling-group-names "$group" \
  --query 'AutoScalingGroups[0].[MinSize,MaxSize,DesiredCapacity]' --output text)
now="$(date +%s)"
read -r target change window_max < <(scaling_decide "$state" "$now" "$current" "$desired")

if ((change > 0)); then
  new=$((current + change))
  new=$((new < min ? min : new > max ? max : new))
  if ((new > current)); then
    log "$platform: desired $desired agents; $group $current -> $new"
    aws autoscaling set-desired-capacity --auto-scaling-group-name "$group" \
      --desired-capacity "$new"
  fi
  exit 0
fi
if ((change == 0)); then
  ((target >= current)) ||
    log "$platform: desired $desired < $current; at most $window_max asked for within ${MANIFOLD_SCALE_IN_DELAY}s"
  exit 0
fi

surplus=$((-change < current - min ? -change : current - min))
idle="$(curl -sf --max-time 10 -G "$server/v1/agents" --data-urlencode "platform=$platform" \
  --data-urlencode idle=true | jq -r '.agents[].id')"
members="$(aws autoscaling describe-auto-scaling-groups --auto-scaling-group-names "$group" \
  --query 'AutoScalingGroups[0].Instances[?LifecycleState==`InService`].InstanceId' \
  --output text | tr '\t' '\n')"
removed=0
for id in $idle; do
  ((removed < surplus)) || break
  grep -qxF "$id" <<<"$members" || continue # an agent outside this group
  log "$platform: desired $desired < $current; terminating idle agent $id"
  aws autoscaling terminate-instance-in-auto-scaling-group --instance-id "$id" \
    --should-decrement-desired-capacity >/dev/null
  removed=$((removed + 1))
done
((removed == 0)) || scaling_scaled_in "$state" "$now"
((removed < surplus)) && log "$platform: only $removed of $surplus surplus agents are idle; the rest stay"
exit 0
