#!/usr/bin/env bash
# Runs README.md's production path ("Running on real hosts") as written: every block marked
# `<!-- readme-test: ... -->`, in order, on this machine, with a directory standing in for
# each host (HOSTS/coordinator, HOSTS/x86-01, HOSTS/graviton-01, HOSTS/ci). It then checks
# that the two-platform image the CI block built is in the registry. PostgreSQL and the
# registry (with the busybox base image) come from `ops/farm.sh up` with only its services.
#
# What differs from the README's text, and nothing else:
#   - in the blocks:
#     postgresql://manifold:SECRET@db.internal:5432/manifold -> the farm's PostgreSQL
#     registry.example.com, mirror.internal:5000 -> the farm's registry (127.0.0.1:PORT)
#     0.0.0.0:7080, 0.0.0.0:7081 -> 127.0.0.1 and free ports
#     coordinator.internal:7080, :7081 -> localhost and the same free ports
#     coordinator.internal -> localhost (the name the API's certificate is made for)
#     /etc/..., /var/..., /run/... -> under the directory of the host the block runs on
#     scp coordinator.internal:PATH -> a copy from the coordinator's directory
#     x86-01 -> graviton-01 when the blocks marked per-agent run the second time
#   - the agent whose architecture is not this machine's (graviton-01 on x86-64) gets
#     `platform = "linux/ARCH"` appended to its agent.toml: it builds under QEMU here
#   - environment the programs get: PATH with the build dir's programs;
#     MANIFOLD_API_AUTH=on (on loopback `auto` would not ask for the token);
#     MANIFOLD_METRICS_LISTEN / MANIFOLD_AGENT_METRICS_LISTEN on free ports;
#     MANIFOLD_EMULATION_FALLBACK_WAIT=0 (no native arm64 agent is coming here);
#     MANIFOLD_TOKEN for the CI blocks: what the block marked stdout=MANIFOLD_TOKEN printed
#   - the CI runner's directory holds examples/hello and the coordinator's ca.pem
#
# Usage: tests/readme/production-path.sh   (as root; ops/test.sh runs it through ctest)
# Env:   MANIFOLD_BUILD_DIR (default <repo>/build), MANIFOLD_README_TEST_KEEP=1 keeps its
#        temporary directory.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build_dir="${MANIFOLD_BUILD_DIR:-$repo/build}"
work="$(mktemp -d /tmp/manifold-readme.XXXXXX)"
chmod 755 "$work"  # PostgreSQL, run as its own user, keeps its data inside
hosts="$work/hosts"
logs="$work/logs"
mkdir -p "$hosts/coordinator" "$hosts/ci" "$logs" "$work/blocks"
daemons=()

say() { echo "production-path: $*"; }

fail() {
  say "FAILED: $*" >&2
  local log
  for log in "$logs"/*.log; do
    [ -s "$log" ] || continue
    echo "---- last lines of $(basename "$log")" >&2
    tail -n 25 "$log" >&2
  done
  exit 1
}

cleanup() {
  local pid
  for pid in "${daemons[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  for pid in "${daemons[@]}"; do
    for _ in $(seq 1 100); do kill -0 -- "-$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  done
  MANIFOLD_FARM_DIR="$work/farm" "$repo/ops/farm.sh" purge >/dev/null 2>&1 || true
  # The agents' overlay storage leaves mounts under their graphroot.
  findmnt -rn -o TARGET | grep "^$work/" | sort -r | xargs -r -n 1 umount -l 2>/dev/null || true
  if [ "${MANIFOLD_README_TEST_KEEP:-0}" = 1 ]; then say "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap "exit 143" TERM INT HUP

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# PostgreSQL and the registry with busybox, on free ports.
say "starting PostgreSQL and the registry"
MANIFOLD_FARM_DIR="$work/farm" MANIFOLD_FARM_ONLY_SERVICES=1 \
  MANIFOLD_FARM_PG_PORT="$(free_port)" MANIFOLD_FARM_REGISTRY_PORT="$(free_port)" \
  MANIFOLD_BUILD_DIR="$build_dir" "$repo/ops/farm.sh" up >"$logs/farm.log" 2>&1 ||
  fail "ops/farm.sh up (services only)"
database_url="$(sed -n 's/^export MANIFOLD_DATABASE_URL=//p; s/^MANIFOLD_DATABASE_URL=//p' "$work/farm/farm.env" | tr -d "'\"")"
registry="$(sed -n 's/^export MANIFOLD_REGISTRY=//p; s/^MANIFOLD_REGISTRY=//p' "$work/farm/farm.env" | tr -d "'\"")"
[ -n "$database_url" ] && [ -n "$registry" ] || fail "farm.env has no MANIFOLD_DATABASE_URL or MANIFOLD_REGISTRY"
api_port="$(free_port)"
agent_port="$(free_port)"

"$repo/tests/readme/extract.py" "$repo/README.md" "$work/blocks" || fail "extracting README.md's blocks"

native="linux/$(dpkg --print-architecture)"
agents=(x86-01 graviton-01)
declare -A agent_platform=([x86-01]=linux/amd64 [graviton-01]=linux/arm64)

root_of() {
  case "$1" in
    coordinator | ci) echo "$hosts/$1" ;;
    agent) echo "$hosts/$2" ;;
    *) fail "unknown host '$1' in a readme-test marker" ;;
  esac
}

# The block's text with this machine's names; $1 the host's directory, $2 the agent's name.
substitute() {
  sed -E \
    -e "s#postgresql://manifold:SECRET@db\.internal:5432/manifold#${database_url}#g" \
    -e "s#registry\.example\.com|mirror\.internal:5000#${registry}#g" \
    -e "s#0\.0\.0\.0:7080#127.0.0.1:${api_port}#g; s#0\.0\.0\.0:7081#127.0.0.1:${agent_port}#g" \
    -e "s#coordinator\.internal:7080#localhost:${api_port}#g" \
    -e "s#coordinator\.internal:7081#localhost:${agent_port}#g" \
    -e "s#coordinator\.internal:/#@coordinator:/#g; s#coordinator\.internal#localhost#g" \
    -e "s#x86-01#$2#g" \
    -e "s#(^|[[:space:]=\"'(>])/(etc|var|run)/#\\1$1/\\2/#g"
}

# scp between hosts is a copy between their directories.
scp() {
  local paths=() arg
  for arg in "$@"; do
    case "$arg" in
      @coordinator:*) paths+=("$README_COORDINATOR_ROOT${arg#@coordinator:}") ;;
      -*) ;;
      *) paths+=("$arg") ;;
    esac
  done
  cp "${paths[@]}"
}
export -f scp
export README_COORDINATOR_ROOT="$hosts/coordinator"
export PATH="$build_dir/coordinator:$build_dir/agent:$build_dir/cli:$PATH"
export MANIFOLD_API_AUTH=on MANIFOLD_EMULATION_FALLBACK_WAIT=0
export MANIFOLD_METRICS_LISTEN="127.0.0.1:$(free_port)" MANIFOLD_AGENT_METRICS_LISTEN=127.0.0.1:0
token=""

wait_until() {  # wait_until SECONDS WHAT DAEMON_PID COMMAND...
  local deadline=$((SECONDS + $1)) what="$2" pid="$3"
  shift 3
  until "$@" >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || fail "$what: the process exited"
    [ "$SECONDS" -lt "$deadline" ] || fail "timed out waiting for $what"
    sleep 0.5
  done
}

api() {  # the test's own look at the API, over IPv4 loopback only
  curl -sf --max-time 5 --cacert "$hosts/coordinator/etc/manifold/ca.pem" \
    --resolve "localhost:$api_port:127.0.0.1" "$@" "https://localhost:$api_port$path"
}

run_block() {  # run_block N HOST AGENT
  local n="$1" host="$2" agent="$3" root lang body tags dest name
  root="$(root_of "$host" "$agent")"
  mkdir -p "$root"
  tags="$(cat "$work/blocks/$n.tags")"
  lang="$(cat "$work/blocks/$n.lang")"
  body="$(substitute "$root" "$agent" <"$work/blocks/$n.body")"
  name="$n-$host${agent:+-$agent}"
  case "$lang" in
    toml)
      dest="$(head -n 1 <<<"$body" | sed -n 's/^# *//p')"
      [[ "$dest" == "$root"/* ]] || fail "block $n: a toml block starts with '# /PATH' of its file"
      mkdir -p "$(dirname "$dest")"
      printf '%s\n' "$body" >"$dest"
      if [ "$(basename "$dest")" = agent.toml ] && [ "${agent_platform[$agent]}" != "$native" ]; then
        echo "platform = \"${agent_platform[$agent]}\"" >>"$dest"
      fi
      say "block $n ($host${agent:+ $agent}): wrote $dest"
      ;;
    sh)
      say "block $n ($host${agent:+ $agent}):"
      sed 's/^/    /' <<<"$body"
      if [[ " $tags " == *" daemon "* ]]; then
        (cd "$root" && exec setsid bash -c "$body" >"$logs/$name.log" 2>&1 </dev/null) &
        daemons+=("$!")
        if [ "$host" = coordinator ]; then
          path=/readyz wait_until 60 "the coordinator's /readyz over TLS" "$!" api
        fi
      elif [[ " $tags " == *" stdout=MANIFOLD_TOKEN "* ]]; then
        token="$(cd "$root" && timeout 120 bash -euo pipefail -c "$body" 2>"$logs/$name.log")" ||
          fail "block $n"
        [ -n "$token" ] || fail "block $n printed no token"
      else
        (cd "$root" && MANIFOLD_TOKEN="$token" timeout 600 bash -euo pipefail -c "$body") \
          >"$logs/$name.log" 2>&1 || fail "block $n ($host${agent:+ $agent})"
        sed 's/^/    | /' "$logs/$name.log" | tail -n 20
      fi
      ;;
    *) fail "block $n: a readme-test block is sh or toml, not '$lang'" ;;
  esac
}

agents_online() {
  path=/v1/agents api -H "Authorization: Bearer $token" |
    jq -e --args '[.agents[] | select(.state == "online") | .id] as $on
                  | all($ARGS.positional[]; . as $a | $on | index($a) != null)' "${agents[@]}"
}

cp -r "$repo/examples/hello/." "$hosts/ci/"
blocks=()
for tags in "$work"/blocks/*.tags; do blocks+=("$(basename "$tags" .tags)"); done
i=0
while [ "$i" -lt "${#blocks[@]}" ]; do
  n="${blocks[$i]}"
  read -r host flags <"$work/blocks/$n.tags" || true
  if [[ " $flags " == *" per-agent "* ]]; then
    group=()
    while [ "$i" -lt "${#blocks[@]}" ] && grep -qw per-agent "$work/blocks/${blocks[$i]}.tags"; do
      group+=("${blocks[$i]}")
      i=$((i + 1))
    done
    for agent in "${agents[@]}"; do
      for n in "${group[@]}"; do
        read -r host flags <"$work/blocks/$n.tags" || true
        run_block "$n" "$host" "$agent"
      done
    done
    continue
  fi
  if [ "$host" = ci ] && [ ! -e "$hosts/ci/ca.pem" ]; then
    cp "$hosts/coordinator/etc/manifold/ca.pem" "$hosts/ci/ca.pem"
    say "waiting for agents ${agents[*]} to be online"
    wait_until 120 "agents ${agents[*]} online" "${daemons[0]}" agents_online
  fi
  run_block "$n" "$host" ""
  i=$((i + 1))
done

# What the CI block pushed: an index with both platforms, under the tag it named.
index="$(curl -sf --max-time 10 -H 'Accept: application/vnd.oci.image.index.v1+json' \
  "http://$registry/v2/team/app/manifests/1.0")" || fail "no image $registry/team/app:1.0"
platforms="$(jq -r '[.manifests[].platform | "\(.os)/\(.architecture)"] | sort | join(",")' <<<"$index")"
[ "$platforms" = "linux/amd64,linux/arm64" ] ||
  fail "the index of $registry/team/app:1.0 lists '$platforms', not linux/amd64,linux/arm64"
grep -q graviton-01 "$logs"/*-ci.log && grep -q x86-01 "$logs"/*-ci.log ||
  fail "manifold agents did not list both agents"
say "passed: $registry/team/app:1.0 has $platforms"
