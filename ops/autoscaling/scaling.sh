# shellcheck shell=bash
# The scaling decision shared by local-scaler.sh and manifold-asg-feeder.sh, the same rules
# the KEDA ScaledObject gives the HPA: read the desired count through Prometheus, clamp
# it, scale out at once by at most a step, scale in only below the highest count asked
# for during the scale-in delay (the HPA's stabilization window) and at most a step per
# period. Sourcing it reads scaling.env (the parameters) beside it and checks them.
# Callers remove only idle agents and drain them; this file decides only how many.
#
# The window lives in a state directory (scaling_decide's first argument): "history"
# holds "SECONDS COUNT" lines, "scaled-in" the time of the last scale-in. A fresh
# directory starts the window with the fleet as found, so nothing is removed before one
# delay has passed.

# shellcheck source=ops/autoscaling/scaling.env
source "$(dirname "${BASH_SOURCE[0]}")/scaling.env"

scaling_die() {
  echo "$(basename "$0" .sh): $*" >&2
  exit 1
}
for scaling_var in MANIFOLD_SCALE_MIN MANIFOLD_SCALE_MAX MANIFOLD_SCALE_POLL \
  MANIFOLD_SCALE_OUT_STEP MANIFOLD_SCALE_IN_DELAY MANIFOLD_SCALE_IN_STEP MANIFOLD_SCALE_IN_PERIOD; do
  [[ "${!scaling_var}" =~ ^[0-9]+$ ]] ||
    scaling_die "$scaling_var must be a whole number, got '${!scaling_var}' (see ops/autoscaling/scaling.env)"
done
((MANIFOLD_SCALE_MIN <= MANIFOLD_SCALE_MAX)) ||
  scaling_die "MANIFOLD_SCALE_MIN ($MANIFOLD_SCALE_MIN) is above MANIFOLD_SCALE_MAX ($MANIFOLD_SCALE_MAX)"
[[ "$MANIFOLD_SCALE_QUERY" == *"platform=\"$MANIFOLD_SCALE_PLATFORM\""* ]] ||
  scaling_die "MANIFOLD_SCALE_QUERY ($MANIFOLD_SCALE_QUERY) does not select platform=\"$MANIFOLD_SCALE_PLATFORM\" (MANIFOLD_SCALE_PLATFORM); set the two together"
((MANIFOLD_SCALE_POLL > 0 && MANIFOLD_SCALE_OUT_STEP > 0 && MANIFOLD_SCALE_IN_STEP > 0)) ||
  scaling_die "MANIFOLD_SCALE_POLL, MANIFOLD_SCALE_OUT_STEP and MANIFOLD_SCALE_IN_STEP must be at least 1"

# scaling_read_desired PROMETHEUS_URL: MANIFOLD_SCALE_QUERY's value through Prometheus's
# HTTP API, rounded up; fails on no answer or no series (then nothing should change, as
# with KEDA's ignoreNullValues: false).
scaling_read_desired() {
  curl -sf --max-time 10 -G "$1/api/v1/query" --data-urlencode "query=$MANIFOLD_SCALE_QUERY" |
    jq -er '.data.result[0].value[1]' |
    awk '{ v = $1 + 0; c = int(v); if (c < v) c++; print c }'
}

# scaling_decide STATE_DIR NOW CURRENT DESIRED: prints "TARGET CHANGE WINDOW_MAX":
# the clamped desired count, the change to make (+N agents to add; -N, at most that many
# idle agents to remove; 0) and the highest count asked for within the delay.
scaling_decide() {
  local dir="$1" now="$2" current="$3" desired="$4" target window_max=0 v last=0 kept
  target=$((desired < MANIFOLD_SCALE_MIN ? MANIFOLD_SCALE_MIN : desired > MANIFOLD_SCALE_MAX ? MANIFOLD_SCALE_MAX : desired))
  mkdir -p "$dir"
  [ -s "$dir/history" ] || echo "$now $current" >"$dir/history"
  kept="$(awk -v since="$((now - MANIFOLD_SCALE_IN_DELAY))" '$1 > since' "$dir/history")"
  printf '%s\n%s\n' "$kept" "$now $target" | sed '/^$/d' >"$dir/history"
  while read -r _ v; do ((v > window_max)) && window_max="$v"; done <"$dir/history"
  [ ! -s "$dir/scaled-in" ] || last="$(cat "$dir/scaled-in")"
  if ((target > current)); then
    echo "$target +$((target - current < MANIFOLD_SCALE_OUT_STEP ? target - current : MANIFOLD_SCALE_OUT_STEP)) $window_max"
  elif ((window_max < current && now - last >= MANIFOLD_SCALE_IN_PERIOD)); then
    echo "$target -$((current - window_max < MANIFOLD_SCALE_IN_STEP ? current - window_max : MANIFOLD_SCALE_IN_STEP)) $window_max"
  else
    echo "$target 0 $window_max"
  fi
}

# scaling_scaled_in STATE_DIR NOW: agents were removed at NOW; the next removal waits a
# period.
scaling_scaled_in() {
  echo "$2" >"$1/scaled-in"
}
