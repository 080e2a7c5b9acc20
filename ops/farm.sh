#!/usr/bin/env bash
# Starts and stops a complete local manifold farm on 127.0.0.1: PostgreSQL, a registry with
# a two-platform busybox base image, the coordinator, and agents (by default one for
# linux/amd64 and one for linux/arm64, the non-native one building under QEMU).
#
# Usage: ops/farm.sh up|down|status|purge
#        ops/farm.sh stop|kill|start NAME
#        ops/farm.sh add-agent NAME PLATFORM | remove-agent NAME
#   up      stops any farm already running in FARM_DIR, then starts one and waits until
#           every agent is online; writes FARM_DIR/farm.env (MANIFOLD_SERVER,
#           MANIFOLD_REGISTRY, MANIFOLD_DATABASE_URL) and FARM_DIR/farm.conf (what start
#           needs). Data (database, registry, agent work dirs) is kept across down/up.
#   down    stops everything started in FARM_DIR (also what a failed up left behind).
#   status  lists each process; exit 0 when all are running, 3 otherwise.
#   purge   down, then deletes FARM_DIR and all its data.
#   stop NAME   SIGTERM to one process (an agent drains first), SIGKILL to it and its
#           children after MANIFOLD_FARM_STOP_TIMEOUT; PostgreSQL gets a fast shutdown.
#           Exit 0 when it stopped by itself, 4 when it had to be killed.
#   kill NAME   SIGKILL to one process and every process it started (a lost host).
#   start NAME  starts one process again with the configuration `up` used (farm.conf) and
#           waits until it is ready (an agent: until the coordinator has welcomed it).
#   start prometheus  starts Prometheus (not started by up) on
#           127.0.0.1:MANIFOLD_FARM_PROMETHEUS_PORT with the shipped prometheus.yml and
#           alerts.yml, scraping this farm's coordinators and agents; stop, kill and down
#           stop it.
#   NAME is postgres, registry, coordinator, coordinator-2, prometheus or an agent's name.
#   add-agent NAME PLATFORM  an agent that was not in MANIFOLD_FARM_AGENTS at up: a key
#           pair the coordinator allows (reloaded with SIGHUP), NAME:PLATFORM saved in
#           farm.conf, then `start NAME`. What ops/autoscaling/local-scaler.sh scales out with.
#   remove-agent NAME  `stop NAME`, then NAME leaves farm.conf's agents (status stops
#           expecting it); its key stays allowed. What the local scaler calls once it
#           drained an agent.
# Prometheus: up writes FARM_DIR/prometheus/ (ops/farm/prometheus.sh): copies of
# ops/prometheus/prometheus.yml and alerts.yml, and file_sd files in targets/ naming each
# coordinator and agent at the metrics port it listens on, kept current by start, stop and
# kill (a killed agent stays listed and shows down) and removed by down. Any Prometheus 2
# can read them: prometheus --config.file=FARM_DIR/prometheus/prometheus.yml.
#
# Env: MANIFOLD_FARM_DIR (default <repo>/.farm), MANIFOLD_BUILD_DIR (default <repo>/build),
#      MANIFOLD_FARM_PG_PORT (55432), MANIFOLD_FARM_REGISTRY_PORT (5000),
#      MANIFOLD_FARM_REGISTRY_DATA (the registry's storage; default FARM_DIR/registry/data),
#      MANIFOLD_FARM_API_PORT (7080), MANIFOLD_FARM_AGENT_PORT (7081),
#      MANIFOLD_FARM_METRICS_PORT (7082, the coordinator's /metrics; agents pick free ports),
#      MANIFOLD_FARM_SLOTS (build slots per agent, 1),
#      MANIFOLD_FARM_COORDINATORS (1, or 2: a second coordinator, coordinator-2, on the same
#        database and state dir, a standby that takes over when the first dies; agents get
#        both endpoints and farm.env both URLs), MANIFOLD_FARM_API_PORT_2 (7090),
#        MANIFOLD_FARM_AGENT_PORT_2 (7091), MANIFOLD_FARM_METRICS_PORT_2 (7092),
#      MANIFOLD_FARM_AGENTS (agents as NAME:PLATFORM, space-separated; default
#        "amd64-1:linux/amd64 arm64-1:linux/arm64"; PLATFORM may be a comma-separated list),
#      MANIFOLD_FARM_BACKEND (what agents build with: buildah, the default, or docker, which
#        needs a Docker engine: give it with MANIFOLD_DOCKER_HOST, and MANIFOLD_DOCKER_NETWORK=none
#        when it has no bridge network; its registry mirror must serve `FROM busybox`; or
#        synthetic, a benchmark tool whose agents fake builds),
#      MANIFOLD_FARM_ONLY_SERVICES=1 (start only PostgreSQL, the registry and the base image),
#      MANIFOLD_FARM_KEEP_ON_FAILURE=1 (leave processes running when up fails, to debug),
#      MANIFOLD_FARM_STOP_TIMEOUT (seconds between SIGTERM and SIGKILL, 20),
#      MANIFOLD_FARM_PLAINTEXT=1 (agent link without CURVE, as in development),
#      MANIFOLD_FARM_PROMETHEUS_PORT (9099; not Prometheus's usual 9090, which Debian's
#        prometheus service takes), MANIFOLD_FARM_PROMETHEUS_INTERVAL (e.g. 1s: every
#        scrape and rule evaluation interval of the copied prometheus.yml; default as
#        shipped); both are read by the command they are given to (up, start prometheus).
# The agent link runs with CURVE, as in production: `up` makes fresh key pairs with
# `manifold keygen` in FARM_DIR/keys (coordinator.key/.pub, NAME.key/.pub per agent) and
# lists every agent's public key in FARM_DIR/keys/agent-keys, the coordinator's allow-list
# (edit it and send the coordinator SIGHUP to reload it).
# The programs read their own settings from the environment, which they inherit from
# this script (e.g. MANIFOLD_HEARTBEAT_INTERVAL_MS, MANIFOLD_MISSED_HEARTBEATS and
# MANIFOLD_MAX_RETRIES for the coordinator, MANIFOLD_DRAIN_GRACE and
# MANIFOLD_SYNTHETIC_BUILD_MS for agents). Agents run RUN steps sandboxed (runc, each on a
# private network of its own: see agent/sandbox_network.h), so `up` needs root;
# MANIFOLD_ISOLATION=chroot runs them unsandboxed (benchmarks only), MANIFOLD_DENY_NETWORK
# denies more networks to them. `up` saves
# the MANIFOLD_* variables (except MANIFOLD_FARM_*) in farm.conf with the ports, agents
# and build dir, and `start` restores them, so a restarted process is configured as before.
# Every process runs in its own session with its output in FARM_DIR/logs/NAME.log (`start`
# appends to it) and its pid in FARM_DIR/pids/NAME.pid, so it outlives this script and
# never holds its stdout.
# The pieces live in ops/farm/: config.sh (settings, farm.conf, farm.env), output.sh
# (messages, log tails), processes.sh (spawning, pid files, stopping), postgres.sh,
# services.sh (registry, base image), manifold.sh (keys, coordinator, agents),
# prometheus.sh (target files, Prometheus) and commands.sh (what each command does).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
# shellcheck source=ops/farm/config.sh
source "$repo/ops/farm/config.sh"
# shellcheck source=ops/farm/output.sh
source "$repo/ops/farm/output.sh"
# shellcheck source=ops/farm/processes.sh
source "$repo/ops/farm/processes.sh"
# shellcheck source=ops/farm/postgres.sh
source "$repo/ops/farm/postgres.sh"
# shellcheck source=ops/farm/services.sh
source "$repo/ops/farm/services.sh"
# shellcheck source=ops/farm/manifold.sh
source "$repo/ops/farm/manifold.sh"
# shellcheck source=ops/farm/prometheus.sh
source "$repo/ops/farm/prometheus.sh"
# shellcheck source=ops/farm/commands.sh
source "$repo/ops/farm/commands.sh"

usage() {
  echo "usage: $0 up|down|status|purge, $0 stop|kill|start NAME (NAME may be prometheus), $0 add-agent NAME PLATFORM or $0 remove-agent NAME" >&2
  exit 2
}

resolve_farm_dir
[[ "$stop_timeout" =~ ^[0-9]+$ ]] ||
  die "MANIFOLD_FARM_STOP_TIMEOUT must be a number of seconds, got '$stop_timeout'"
[[ "$coordinators" =~ ^[12]$ ]] ||
  die "MANIFOLD_FARM_COORDINATORS must be 1 or 2, got '$coordinators'"
command="${1:-}"
case "$command" in
  up | down | status | purge)
    [ "$#" -eq 1 ] || usage
    "cmd_$command"
    ;;
  stop | kill | start | remove-agent)
    [ "$#" -eq 2 ] || usage
    "cmd_${command//-/_}" "$2"
    ;;
  add-agent)
    [ "$#" -eq 3 ] || usage
    cmd_add_agent "$2" "$3"
    ;;
  *) usage ;;
esac
