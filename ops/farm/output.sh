# shellcheck shell=bash
# What the farm tells the person running it: its messages on stdout/stderr and, when a
# start-up step fails, the end of the log of the process that was starting. Sourced by
# ops/farm.sh.

say() {
  echo "farm: $*"
}

die() {
  echo "farm: $*" >&2
  exit 1
}

elapsed_since() {
  local now
  now="$(date +%s%N)"
  printf '%d.%d s' $(((now - $1) / 1000000000)) $(((now - $1) / 100000000 % 10))
}

readonly log_tail_lines=40
current_log=""
fresh_logs=1 # up starts each log afresh; start appends to it

# open_log NAME: makes NAME's log the current one (shown when start-up fails).
open_log() {
  current_log="$logs/$1.log"
  if [ "$fresh_logs" -eq 1 ]; then
    : >"$current_log"
  else
    echo "---- farm: starting $1 again at $(date -u +%Y-%m-%dT%H:%M:%SZ) ----" >>"$current_log"
  fi
}

# The end of the log of what was starting when a step failed, for the person reading.
print_log_tail() {
  if [ -n "$current_log" ] && [ -f "$current_log" ]; then
    echo "farm: last $log_tail_lines lines of $current_log:" >&2
    tail -n "$log_tail_lines" "$current_log" | sed 's/^/  | /' >&2
  fi
}
