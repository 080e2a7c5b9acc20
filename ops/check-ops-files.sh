#!/usr/bin/env bash
# Checks the operations files with the tools that consume them, so a file Prometheus or
# Grafana would refuse never reaches a deployment:
#   - ops/prometheus/prometheus.yml     promtool check config (also checks alerts.yml)
#   - ops/prometheus/alerts.yml         promtool check rules, promtool test rules
#   - ops/grafana/manifold-dashboard.json
#       jq: an importable dashboard with a Prometheus datasource variable, every panel on it
#       with queries; every query parsed by promtool (as a recording rule, with Grafana's
#       variables replaced), so a typo in PromQL fails here, not on the screen
#   - ops/autoscaling: JSON with jq; the KEDA ScaledObject's query, bounds, poll, steps and
#       scale-in delay and the feeder timer's interval equal scaling.env's, and
#       local-scaler.sh and manifold-asg-feeder.sh read scaling.env (through scaling.sh),
#       whose decisions are checked against the HPA's rules
#   - shell scripts (ops/*.sh, ops/farm/*.sh which ops/farm.sh sources, ops/autoscaling/*.sh)
#       bash -n
#   - docker-compose.yml                docker-compose config -q; every file it mounts exists;
#       promtool check config on Prometheus's files as the compose file mounts them
#   - the Prometheus files ops/farm.sh writes (ops/farm/prometheus.sh)  promtool check config
#   - ops/grafana/provisioning          the datasource and dashboard provider Grafana loads
# Run by ops/test.sh before the tests and by tests/integration/ops_files_test.cc.
# Needs promtool (Debian's prometheus package), jq and docker-compose (Debian's
# docker-compose package, which brings python3-yaml); exits 1 on the first failure.
set -euo pipefail

ops="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
for tool in promtool jq docker-compose python3; do
  command -v "$tool" >/dev/null || {
    echo "check-ops-files: $tool is not installed (ops/install-deps.sh installs it)" >&2
    exit 1
  }
done
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

step() { echo "==> $*"; }

step "promtool check config ops/prometheus/prometheus.yml"
promtool check config "$ops/prometheus/prometheus.yml"

step "promtool check rules ops/prometheus/alerts.yml"
promtool check rules "$ops/prometheus/alerts.yml"

step "promtool test rules ops/prometheus/alerts_test.yml"
(cd "$ops/prometheus" && promtool test rules alerts_test.yml)

dashboard="$ops/grafana/manifold-dashboard.json"
step "jq: ops/grafana/manifold-dashboard.json"
check() {  # check DESCRIPTION JQ-FILTER: the filter must yield true
  if ! jq -e "$2" "$dashboard" >/dev/null; then
    echo "check-ops-files: $dashboard: $1" >&2
    exit 1
  fi
}
check "is not JSON with a title and a uid" \
  '(.title | type == "string" and length > 0) and (.uid | type == "string" and length > 0)'
check "has no dashboard id (an imported dashboard must not carry one)" '.id == null'
check "needs exactly one datasource variable of type prometheus" \
  '[.templating.list[] | select(.type == "datasource" and .query == "prometheus")] | length == 1'
check "panel ids are not unique" '[.panels[].id] | length == (unique | length)'
check "has no panels with queries" '[.panels[] | select(.type != "row")] | length > 0'
bad_panels="$(jq -r '.panels[] | select(.type != "row")
  | select((.datasource.uid != "${datasource}")
           or ((.targets // []) | length == 0)
           or any(.targets[]; (.expr // "") == "" or .datasource.uid != "${datasource}")
           or (.gridPos.w // 0) <= 0 or (.gridPos.h // 0) <= 0)
  | .title' "$dashboard")"
if [ -n "$bad_panels" ]; then
  echo "check-ops-files: $dashboard: these panels lack a \${datasource} datasource, a query" \
    "or a size:" >&2
  echo "$bad_panels" >&2
  exit 1
fi
# Grafana's variables are not PromQL; give them values Prometheus would see.
jq '{groups: [{name: "dashboard", rules: [.panels[] | select(.type != "row") | . as $p
      | .targets[] | {record: "dashboard:panel_\($p.id)_\(.refId)",
                      expr: (.expr | gsub("\\$__rate_interval"; "5m")
                                   | gsub("\\$platform"; ".+"))}]}]}' \
  "$dashboard" >"$tmp/dashboard-queries.yml"
promtool check rules "$tmp/dashboard-queries.yml"

step "ops/autoscaling"
for json in "$ops"/autoscaling/*.json; do
  [ -e "$json" ] || continue
  jq -e . "$json" >/dev/null || { echo "check-ops-files: $json is not JSON" >&2; exit 1; }
done
# One set of parameters: the KEDA ScaledObject and the feeder's timer hold the values of
# scaling.env, which local-scaler.sh and manifold-asg-feeder.sh read (through scaling.sh).
for script in local-scaler.sh manifold-asg-feeder.sh; do
  grep -q '^source ".*/scaling.sh"$' "$ops/autoscaling/$script" || {
    echo "check-ops-files: ops/autoscaling/$script does not source scaling.sh, so it may not follow scaling.env" >&2
    exit 1
  }
done
(
  # shellcheck source=ops/autoscaling/scaling.env
  source "$ops/autoscaling/scaling.env"
  # shellcheck disable=SC2090 # the query's quotes are PromQL's, exported as they are
  export MANIFOLD_SCALE_QUERY MANIFOLD_SCALE_PLATFORM MANIFOLD_SCALE_MIN MANIFOLD_SCALE_MAX \
    MANIFOLD_SCALE_POLL MANIFOLD_SCALE_OUT_STEP MANIFOLD_SCALE_IN_DELAY MANIFOLD_SCALE_IN_STEP \
    MANIFOLD_SCALE_IN_PERIOD
  python3 - "$ops/autoscaling" <<'PY'
import os, re, sys, yaml
d = sys.argv[1]
env = {k: os.environ[k] for k in os.environ if k.startswith("MANIFOLD_SCALE_")}
spec = yaml.safe_load(open(d + "/keda-scaledobject.yaml"))["spec"]
behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
def policy(direction):
    policies = behavior[direction]["policies"]
    if len(policies) != 1 or policies[0]["type"] != "Pods":
        return None
    return (str(policies[0]["value"]), str(policies[0]["periodSeconds"]))
timer = re.search(r"^OnUnitActiveSec=(\d+)s$", open(d + "/manifold-asg-feeder.timer").read(), re.M)
checks = [
    ("triggers[0].metadata.query", spec["triggers"][0]["metadata"]["query"], env["MANIFOLD_SCALE_QUERY"]),
    ("the query's platform", 'platform="%s"' % env["MANIFOLD_SCALE_PLATFORM"] in env["MANIFOLD_SCALE_QUERY"], True),
    ("minReplicaCount", str(spec["minReplicaCount"]), env["MANIFOLD_SCALE_MIN"]),
    ("maxReplicaCount", str(spec["maxReplicaCount"]), env["MANIFOLD_SCALE_MAX"]),
    ("pollingInterval", str(spec["pollingInterval"]), env["MANIFOLD_SCALE_POLL"]),
    ("scaleUp policy (pods, periodSeconds)", policy("scaleUp"), (env["MANIFOLD_SCALE_OUT_STEP"], env["MANIFOLD_SCALE_POLL"])),
    ("scaleUp.stabilizationWindowSeconds", str(behavior["scaleUp"]["stabilizationWindowSeconds"]), "0"),
    ("scaleDown.stabilizationWindowSeconds", str(behavior["scaleDown"]["stabilizationWindowSeconds"]), env["MANIFOLD_SCALE_IN_DELAY"]),
    ("scaleDown policy (pods, periodSeconds)", policy("scaleDown"), (env["MANIFOLD_SCALE_IN_STEP"], env["MANIFOLD_SCALE_IN_PERIOD"])),
    ("manifold-asg-feeder.timer OnUnitActiveSec", timer and timer.group(1), env["MANIFOLD_SCALE_POLL"]),
]
bad = [f"{name} is {got!r}, scaling.env says {want!r}" for name, got, want in checks if got != want]
for line in bad:
    print("check-ops-files: ops/autoscaling/keda-scaledobject.yaml or the feeder's timer: " + line, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
)

step "ops/autoscaling/scaling.sh decides as the HPA does"
# With scaling.env's defaults (min 1, max 20, out 4 per poll, in 2 per 120 s after 600 s).
(
  # shellcheck source=ops/autoscaling/scaling.sh
  source "$ops/autoscaling/scaling.sh"
  state="$tmp/scaling"
  expect() { # expect NOW CURRENT DESIRED "TARGET CHANGE WINDOW_MAX"
    local got
    got="$(scaling_decide "$state" "$1" "$2" "$3")"
    [ "$got" = "$4" ] || {
      echo "check-ops-files: scaling_decide at $1 with $2 agents, desired $3: got '$got', expected '$4'" >&2
      exit 1
    }
  }
  expect 1000 1 10 "10 +4 10"   # out at once, 4 per poll
  expect 1015 5 30 "20 +4 20"   # never above the maximum
  expect 1030 20 0 "1 0 20"     # a lull: the window still holds 20
  expect 1614 20 0 "1 0 20"     # 20 was asked for 599 s ago
  expect 1615 20 0 "1 -2 1"     # 600 s since: 2 may go
  scaling_scaled_in "$state" 1615
  expect 1700 18 0 "1 0 1"      # within the period after a scale-in
  expect 1735 18 0 "1 -2 1"     # a period later
  scaling_scaled_in "$state" 1735
  expect 1800 16 3 "3 0 3"      # more work, within the period: nothing goes
  expect 1900 1 0 "1 0 3"       # at the minimum nothing goes, whatever the window
)

step "bash -n ops/*.sh ops/farm/*.sh ops/autoscaling/*.sh"
for script in "$ops"/*.sh "$ops"/farm/*.sh "$ops"/autoscaling/*.sh; do
  [ -e "$script" ] || continue
  bash -n "$script"
done

step "ops/systemd"
# The programs are installed elsewhere on a real host; a stand-in lets systemd check the
# rest of each unit.
if command -v systemd-analyze >/dev/null 2>&1; then
  for unit in "$ops"/systemd/*.service; do
    sed 's#^ExecStart=.*#ExecStart=/bin/true#' "$unit" >"$tmp/$(basename "$unit")"
  done
  if ! out="$(systemd-analyze verify "$tmp"/*.service 2>&1)" || [ -n "$out" ]; then
    echo "check-ops-files: systemd-analyze verify found problems in ops/systemd:" >&2
    echo "$out" >&2
    exit 1
  fi
else
  echo "check-ops-files: systemd-analyze not found; ops/systemd not checked" >&2
fi

step "docker-compose config -q docker-compose.yml"
repo="$(dirname "$ops")"
# The project name is fixed so the check does not depend on the checkout's directory name.
compose=(docker-compose --project-directory "$repo" --project-name manifold -f "$repo/docker-compose.yml")
"${compose[@]}" config -q
"${compose[@]}" config >"$tmp/compose.yml"
# Bind mounts whose source is missing would become empty directories at `up`; the
# monitoring services must mount what Prometheus and Grafana read.
python3 - "$tmp/compose.yml" "$repo" <<'PY'
import os, sys, yaml
compose, repo = yaml.safe_load(open(sys.argv[1])), sys.argv[2]
def fail(msg):
    sys.exit(f"check-ops-files: docker-compose.yml: {msg}")
mounts = {}
for name, svc in compose["services"].items():
    for v in svc.get("volumes", []):
        src, dst = v.split(":")[:2]
        if src.startswith("/"):
            if not os.path.exists(src):
                fail(f"service {name} mounts {src}, which does not exist")
            mounts[(name, dst)] = os.path.relpath(src, repo)
want = {
    ("prometheus", "/etc/prometheus/prometheus.yml"): "ops/prometheus/prometheus.yml",
    ("prometheus", "/etc/prometheus/alerts.yml"): "ops/prometheus/alerts.yml",
    ("prometheus", "/etc/prometheus/targets"): "ops/prometheus/compose-targets",
    ("grafana", "/etc/grafana/provisioning"): "ops/grafana/provisioning",
    ("grafana", "/var/lib/grafana/dashboards/manifold-dashboard.json"):
        "ops/grafana/manifold-dashboard.json",
}
for (svc, dst), src in want.items():
    if mounts.get((svc, dst)) != src:
        fail(f"service {svc} must mount {src} at {dst}")
# Prometheus scrapes 127.0.0.1 targets, so it must share the agents' network namespace.
for svc in ("prometheus", "coordinator", "agent-amd64", "agent-arm64"):
    if compose["services"][svc].get("network_mode") != "service:registry":
        fail(f"service {svc} must use network_mode service:registry")
PY
# Prometheus's files laid out as the compose file mounts them.
mkdir -p "$tmp/prometheus"
cp "$ops/prometheus/prometheus.yml" "$ops/prometheus/alerts.yml" "$tmp/prometheus/"
cp -r "$ops/prometheus/compose-targets" "$tmp/prometheus/targets"
promtool check config "$tmp/prometheus/prometheus.yml"

step "promtool check config on the files ops/farm.sh writes"
# The farm's own functions on a scratch farm dir, with an agent log announcing the agent's
# metrics address as a running agent does.
(
  export MANIFOLD_FARM_DIR="$tmp/farm" MANIFOLD_FARM_PROMETHEUS_INTERVAL=1s
  # shellcheck source=ops/farm/config.sh
  source "$ops/farm/config.sh"
  # shellcheck source=ops/farm/output.sh
  source "$ops/farm/output.sh"
  # shellcheck source=ops/farm/processes.sh
  source "$ops/farm/processes.sh"
  # shellcheck source=ops/farm/prometheus.sh
  source "$ops/farm/prometheus.sh"
  mkdir -p "$farm_dir"
  resolve_farm_dir
  mkdir -p "$logs"
  echo "[info] metrics on 127.0.0.1:7083" >"$logs/amd64-1.log"
  write_prometheus_config
  write_coordinator_targets
  write_agent_target amd64-1 0
)
promtool check config "$tmp/farm/prometheus/prometheus.yml"

step "ops/grafana/provisioning"
python3 - "$ops/grafana/provisioning" <<'PY'
import sys, yaml
root = sys.argv[1]
def fail(msg):
    sys.exit(f"check-ops-files: ops/grafana/provisioning: {msg}")
ds = yaml.safe_load(open(f"{root}/datasources/manifold.yml"))
proms = [d for d in ds.get("datasources", []) if d.get("type") == "prometheus"]
if ds.get("apiVersion") != 1 or len(proms) != 1 or not proms[0].get("isDefault"):
    fail("datasources/manifold.yml needs apiVersion 1 and one default prometheus datasource")
if not proms[0].get("url", "").startswith("http://"):
    fail("the prometheus datasource needs a url")
dash = yaml.safe_load(open(f"{root}/dashboards/manifold.yml"))
providers = dash.get("providers", [])
if dash.get("apiVersion") != 1 or [p.get("type") for p in providers] != ["file"] \
        or providers[0].get("options", {}).get("path") != "/var/lib/grafana/dashboards":
    fail("dashboards/manifold.yml needs apiVersion 1 and one file provider reading "
         "/var/lib/grafana/dashboards (where docker-compose.yml mounts the dashboard)")
PY

echo "==> ops files OK"
