#!/usr/bin/env bash
# Feeds an Auto Scaling group of agents the coordinator's manifold_desired_agents for one
# platform; run every minute (manifold-asg-feeder.timer) wherever the coordinator and the
# AWS API are reachable.
#
# Scale-out: set-desired-capacity to the desired count (within the group's min and max).
# Scale-in never lowers the desired capacity, which would let the group pick any
# instance, busy or not. Once the desired count has stayed below the group's size for
# MANIFOLD_SCALE_IN_DELAY seconds, it picks agents the coordinator reports idle
# (GET /v1/agents?platform=P&idle=true: no running job, not draining) and terminates
# exactly those instances with
# --should-decrement-desired-capacity; the lifecycle hook still drains each one, so an
# agent that took a job in the meantime finishes it first. Agent ids must be the EC2
# instance ids (MANIFOLD_AGENT_ID in the instances' user data).
#
# Env: MANIFOLD_ASG_NAME (required), MANIFOLD_PLATFORM (default linux/arm64),
#   MANIFOLD_METRICS_URL (default http://127.0.0.1:7082/metrics, the coordinator's),
#   MANIFOLD_SERVER (default http://127.0.0.1:7080, the coordinator's API),
#   MANIFOLD_SCALE_IN_DELAY (default 600), MANIFOLD_FEEDER_STATE (default
#   ${STATE_DIRECTORY:-/var/lib/manifold-asg-feeder}/below-since).
# Needs curl, jq, awk and the AWS CLI (autoscaling:DescribeAutoScalingGroups,
# SetDesiredCapacity, TerminateInstanceInAutoScalingGroup).
set -euo pipefail

group="${MANIFOLD_ASG_NAME:?set MANIFOLD_ASG_NAME to the agents Auto Scaling group}"
platform="${MANIFOLD_PLATFORM:-linux/arm64}"
metrics_url="${MANIFOLD_METRICS_URL:-http://127.0.0.1:7082/metrics}"
server="${MANIFOLD_SERVER:-http://127.0.0.1:7080}"
scale_in_delay="${MANIFOLD_SCALE_IN_DELAY:-600}"
state="${MANIFOLD_FEEDER_STATE:-${STATE_DIRECTORY:-/var/lib/manifold-asg-feeder}/below-since}"

log() { echo "manifold-asg-feeder: $*"; }

# The exposition line is: manifold_desired_agents{platform="linux/arm64"} 3
desired="$(curl -sf --max-time 10 "$metrics_url" |
  awk -v series="manifold_desired_agents{platform=\"$platform\"}" \
    '$1 == series { printf "%d", $2; found = 1 } END { exit !found }')" || {
  # No answer or no series: leave the group alone rather than guess.
  log "no manifold_desired_agents for $platform at $metrics_url; not changing $group" >&2
  exit 1
}

read -r min max current < <(aws autoscaling describe-auto-scaling-groups \
  --auto-scaling-group-names "$group" \
  --query 'AutoScalingGroups[0].[MinSize,MaxSize,DesiredCapacity]' --output text)
target=$((desired < min ? min : desired > max ? max : desired))

if ((target >= current)); then
  rm -f "$state"
  if ((target > current)); then
    log "$platform: desired $desired agents; $group $current -> $target"
    aws autoscaling set-desired-capacity --auto-scaling-group-name "$group" \
      --desired-capacity "$target"
  fi
  exit 0
fi

# Below: wait out a lull between builds before removing anything.
now="$(date +%s)"
mkdir -p "$(dirname "$state")"
[ -s "$state" ] || echo "$now" >"$state"
since="$(cat "$state")"
if ((now - since < scale_in_delay)); then
  log "$platform: desired $desired < $current for $((now - since))s; scale-in after ${scale_in_delay}s"
  exit 0
fi

surplus=$((current - target))
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
((removed < surplus)) && log "$platform: only $removed of $surplus surplus agents are idle; the rest stay"
rm -f "$state"
exit 0
