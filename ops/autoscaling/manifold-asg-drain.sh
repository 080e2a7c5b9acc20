#!/usr/bin/env bash
# Runs on every agent instance of the Auto Scaling group (manifold-asg-drain.service).
# When the group decides to terminate this instance, the lifecycle hook
# (asg-lifecycle-hook.json) holds it in Terminating:Wait and the instance metadata
# service reports the target lifecycle state "Terminated". This script then stops the
# agent, which drains (systemd sends SIGTERM: no new jobs, running ones finish within
# --drain-grace), keeps the hook alive with heartbeats meanwhile, and completes the
# lifecycle action so the instance goes only after its builds are done.
#
# Env: MANIFOLD_ASG_HOOK (default manifold-drain), MANIFOLD_AGENT_UNIT (default
# manifold-agent.service), MANIFOLD_DRAIN_TIMEOUT seconds to wait for the agent to exit
# (default 720: longer than the agent's 600 s drain grace, shorter than the systemd stop
# timeout of its unit). Needs curl and the AWS CLI with autoscaling:CompleteLifecycleAction
# and autoscaling:RecordLifecycleActionHeartbeat on the instance profile.
set -euo pipefail

hook="${MANIFOLD_ASG_HOOK:-manifold-drain}"
unit="${MANIFOLD_AGENT_UNIT:-manifold-agent.service}"
timeout_s="${MANIFOLD_DRAIN_TIMEOUT:-720}"
imds="http://169.254.169.254/latest"

# IMDSv2: every read carries a session token.
meta() {
  local token
  token="$(curl -sf -X PUT "$imds/api/token" -H "X-aws-ec2-metadata-token-ttl-seconds: 60")"
  curl -sf -H "X-aws-ec2-metadata-token: $token" "$imds/meta-data/$1"
}

instance_id="$(meta instance-id)"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-$(meta placement/region)}"
group="$(aws autoscaling describe-auto-scaling-instances --instance-ids "$instance_id" \
  --query 'AutoScalingInstances[0].AutoScalingGroupName' --output text)"
echo "manifold-asg-drain: watching $instance_id in $group"

# Only an instance with a terminating lifecycle hook ever reports "Terminated" here.
until [ "$(meta autoscaling/target-lifecycle-state || true)" = "Terminated" ]; do
  sleep 5
done

echo "manifold-asg-drain: $instance_id is being terminated; draining $unit"
systemctl stop --no-block "$unit"
start=$SECONDS
last_heartbeat=$SECONDS
# "deactivating" is the drain itself: the agent got SIGTERM and has not exited yet.
while [[ "$(systemctl show -p ActiveState --value "$unit")" =~ ^(active|deactivating|reloading)$ ]]; do
  if ((SECONDS - start > timeout_s)); then
    echo "manifold-asg-drain: $unit still running after ${timeout_s}s; letting the instance go" >&2
    break
  fi
  # The hook would give up after its HeartbeatTimeout (900 s); a drain may take longer.
  if ((SECONDS - last_heartbeat >= 300)); then
    aws autoscaling record-lifecycle-action-heartbeat --lifecycle-hook-name "$hook" \
      --auto-scaling-group-name "$group" --instance-id "$instance_id" || true
    last_heartbeat=$SECONDS
  fi
  sleep 5
done

aws autoscaling complete-lifecycle-action --lifecycle-hook-name "$hook" \
  --auto-scaling-group-name "$group" --instance-id "$instance_id" \
  --lifecycle-action-result CONTINUE
echo "manifold-asg-drain: drained after $((SECONDS - start))s; termination continues"
