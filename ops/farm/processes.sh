# shellcheck shell=bash
# The farm's processes: starting one in its own session with a log and a pid file,
# telling whether a pid is still one of ours, waiting for readiness, and stopping or
# killing a process with everything it started. Sourced by ops/farm.sh.

# Closes every inherited descriptor above 2, so a started daemon holds nothing of the
# caller's (a test harness reading this script's output waits for its pipe to close).
close_inherited_fds() {
  local entry fd
  for entry in "/proc/$BASHPID/fd/"*; do
    fd="${entry##*/}"
    if [ "$fd" -gt 2 ]; then
      eval "exec $fd>&-" 2>/dev/null || true
    fi
  done
}

# spawn NAME COMMAND...: starts COMMAND in its own session (it survives this script and
# terminal hang-ups), output appended to logs/NAME.log, pid in pids/NAME.pid.
spawn() {
  local name="$1"
  shift
  (
    close_inherited_fds
    exec setsid "$@"
  ) >>"$logs/$name.log" 2>&1 </dev/null &
  echo "$!" >"$pids/$name.pid"
}

# Whether PID is alive and is one of this farm's processes (its command line names the
# farm's directory), so a recycled pid is never signalled.
is_ours() {
  local pid="$1" marker="$2"
  if [ -z "$pid" ] || [ ! -r "/proc/$pid/cmdline" ]; then
    return 1
  fi
  # The process may exit between the test above and this read.
  { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF -- "$marker"
}

pid_of() {
  if [ -f "$pids/$1.pid" ]; then
    head -n 1 "$pids/$1.pid"
  fi
}

marker_of() {
  if [ "$1" = postgres ]; then
    echo "$(pg_root)/data"
  else
    echo "$farm_dir"
  fi
}

# tree_of PID: PID and every live process that descends from it or belongs to its session
# (the processes we start are session leaders). buildah runs in a process group of its own,
# so signalling the group alone would leave it building.
tree_of() {
  ps -e -o pid= -o ppid= -o sid= | awk -v root="$1" '
    { parent[$1] = $2; session[$1] = $3 }
    END {
      if (!(root in parent)) exit
      found[root] = 1
      for (p in parent) if (session[p] == root) found[p] = 1
      do {
        grown = 0
        for (p in parent) if (!(p in found) && (parent[p] in found)) { found[p] = 1; grown = 1 }
      } while (grown)
      for (p in found) print p
    }'
}

# kill_tree PID: SIGKILL to PID and its tree. The tree is frozen first (SIGSTOP) and listed
# again until the listing holds only frozen members, so nothing forked meanwhile escapes.
kill_tree() {
  local members again _
  members="$(tree_of "$1" | sort -n)"
  [ -n "$members" ] || return 0
  for _ in 1 2 3 4 5; do
    # shellcheck disable=SC2086 # one pid per word
    kill -STOP $members 2>/dev/null || true
    again="$(tree_of "$1" | sort -n)"
    [ "$again" = "$members" ] && break
    members="$again"
  done
  # shellcheck disable=SC2086
  [ -z "$members" ] || kill -KILL $members 2>/dev/null || true
}

# What is left of a session once its leader PID is gone: its orphaned children, such as a
# buildah started by an agent. The session id cannot be reused while they exist.
kill_session_leftovers() {
  local -a left=()
  mapfile -t left < <(ps -e -o pid= -o sid= | awk -v sid="$1" '$2 == sid && $1 != sid { print $1 }')
  if [ "${#left[@]}" -gt 0 ]; then
    kill -KILL "${left[@]}" 2>/dev/null || true
  fi
}

# stop_processes NAME...: SIGTERM to each, a bounded wait for all, then SIGKILL to what is
# left and everything it started. Sets killed=1 when SIGKILL was needed.
killed=0
stop_processes() {
  local name pid deadline left
  local -a live=()
  for name in "$@"; do
    pid="$(pid_of "$name")"
    if is_ours "$pid" "$farm_dir"; then
      kill -TERM "$pid" 2>/dev/null || true
      live+=("$name")
    fi
  done
  deadline=$((SECONDS + stop_timeout))
  while [ "${#live[@]}" -gt 0 ]; do
    left=0
    for name in "${live[@]}"; do
      is_ours "$(pid_of "$name")" "$farm_dir" && left=1
    done
    [ "$left" -eq 0 ] && break
    if [ "$SECONDS" -ge "$deadline" ]; then
      for name in "${live[@]}"; do
        pid="$(pid_of "$name")"
        if is_ours "$pid" "$farm_dir"; then
          say "$name (pid $pid) did not stop within $stop_timeout s: SIGKILL"
          kill_tree "$pid"
          killed=1
        fi
      done
      sleep 0.2
      break
    fi
    sleep 0.1
  done
  for name in "${live[@]}"; do
    pid="$(pid_of "$name")"
    [ -n "$pid" ] && kill_session_leftovers "$pid"
    say "stopped $name"
  done
  for name in "$@"; do
    rm -f "$pids/$name.pid"
  done
}

# wait_for SECONDS DESCRIPTION NAME COMMAND...: polls COMMAND until it succeeds, failing if
# the process NAME exits or SECONDS pass.
wait_for() {
  local seconds="$1" what="$2" name="$3"
  shift 3
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if ! is_ours "$(pid_of "$name")" "$farm_dir"; then
      die "$name exited while waiting for $what"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      die "timed out after $seconds s waiting for $what"
    fi
    sleep 0.2
  done
}

# The pid of NAME if it is running as part of this farm, else nothing.
running_pid() {
  local name="$1" pid data
  pid="$(pid_of "$name")"
  if [ "$name" = postgres ]; then
    data="$(pg_root)/data"
    if [ -f "$data/postmaster.pid" ]; then
      pid="$(head -n 1 "$data/postmaster.pid")"
    fi
  fi
  if is_ours "$pid" "$(marker_of "$name")"; then
    echo "$pid"
  fi
}

agent_names() {
  local f name
  for f in "$pids"/*.pid; do
    [ -e "$f" ] || continue
    name="$(basename "$f" .pid)"
    case " ${services[*]} " in
      *" $name "*) ;;
      *) echo "$name" ;;
    esac
  done
}

stop_all() {
  [ -d "$pids" ] || return 0
  local -a agents
  mapfile -t agents < <(agent_names)
  # Prometheus first, so it does not record the farm going down; agents next, so none
  # loses its coordinator mid-build; the database last.
  stop_processes prometheus
  if [ "${#agents[@]}" -gt 0 ]; then
    stop_processes "${agents[@]}"
  fi
  stop_processes coordinator coordinator-2
  stop_processes registry
  stop_postgres
  remove_targets
  rm -f "$farm_dir/farm.env"
}
