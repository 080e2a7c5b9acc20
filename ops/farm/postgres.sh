# shellcheck shell=bash
# PostgreSQL for the farm: where its cluster lives (FARM_DIR/postgres, or a directory the
# postgres user can enter), initdb, start with the database, fast shutdown, and collecting
# the data of clusters whose farm was deleted. Sourced by ops/farm.sh.

# Where PostgreSQL's data goes when the postgres user cannot enter FARM_DIR.
readonly pg_fallback_prefix=/var/tmp/manifold-postgres-

pg_bindir() {
  if [ -n "${MANIFOLD_PG_BINDIR:-}" ]; then
    echo "$MANIFOLD_PG_BINDIR"
    return
  fi
  local dir
  dir="$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)"
  [ -n "$dir" ] || die "PostgreSQL server binaries not found (install postgresql-15: ops/install-deps.sh, or set MANIFOLD_PG_BINDIR)"
  echo "$dir"
}

# The postgres user must reach its data dir; FARM_DIR may sit under a directory it cannot
# enter (such as /root). Then the data lives in a postgres-reachable directory that
# FARM_DIR/postgres links to.
pg_root() {
  if [ -L "$farm_dir/postgres" ]; then
    readlink -f "$farm_dir/postgres"
  else
    echo "$farm_dir/postgres"
  fi
}

prepare_pg_root() {
  local root
  if [ ! -L "$farm_dir/postgres" ]; then
    mkdir -p "$farm_dir/postgres"
    chown postgres: "$farm_dir/postgres"
    if ! runuser -u postgres -- test -w "$farm_dir/postgres"; then
      # A private temp dir (mode 0700) only needs search permission for others.
      if [ "$(stat -c %u "$farm_dir")" = "$(id -u)" ]; then
        chmod o+x "$farm_dir"
      fi
    fi
    if ! runuser -u postgres -- test -w "$farm_dir/postgres"; then
      root="$pg_fallback_prefix$(printf '%s' "$farm_dir" | sha256sum | cut -c1-16)"
      say "postgres cannot enter $farm_dir; keeping its data in $root ($0 purge deletes it)"
      rmdir "$farm_dir/postgres" 2>/dev/null || die "$farm_dir/postgres is not empty but postgres cannot use it"
      mkdir -p "$root"
      # Names its farm, so that it can be collected once that farm is deleted.
      printf '%s\n' "$farm_dir" >"$root/farm-dir"
      ln -s "$root" "$farm_dir/postgres"
    fi
  fi
  root="$(pg_root)"
  mkdir -p "$root"
  chown postgres: "$root"
  runuser -u postgres -- test -w "$root" || die "postgres cannot write to $root"
}

# Deletes the data dirs of fallback clusters whose farm was deleted without `purge` (a test
# harness removing its temporary FARM_DIR), unless a postgres still runs on one.
collect_orphaned_pg_dirs() {
  local dir owner pid
  for dir in "$pg_fallback_prefix"*; do
    [ -f "$dir/farm-dir" ] || continue
    owner="$(head -n 1 "$dir/farm-dir")"
    if [ -n "$owner" ] && [ "$(readlink -f "$owner/postgres" 2>/dev/null)" = "$dir" ]; then
      continue
    fi
    pid=""
    if [ -f "$dir/data/postmaster.pid" ]; then
      pid="$(head -n 1 "$dir/data/postmaster.pid")"
    fi
    if is_ours "$pid" "$dir/data"; then
      continue
    fi
    rm -rf "$dir"
  done
}

start_postgres() {
  local t0 root data sockdir bin opts
  t0="$(date +%s%N)"
  open_log postgres
  bin="$(pg_bindir)"
  prepare_pg_root
  root="$(pg_root)"
  data="$root/data"
  # --no-sync: skipping initdb's fsync of every new file saves seconds; a local farm's fresh
  # cluster does not need to survive a host crash in the first moments of its life.
  if [ ! -f "$data/PG_VERSION" ]; then
    rm -rf "$data"
    timeout 120 runuser -u postgres -- "$bin/initdb" -D "$data" --auth=trust -U postgres \
      --encoding=UTF8 --locale=C --no-sync >>"$current_log" 2>&1 </dev/null ||
      die "initdb failed"
  fi
  # Unix socket paths are limited to 107 bytes; a deep FARM_DIR gets TCP only.
  sockdir="$root/run"
  mkdir -p "$sockdir"
  chown postgres: "$sockdir"
  if [ "${#sockdir}" -gt 90 ]; then
    sockdir=""
  fi
  opts="-p $pg_port -k '$sockdir' -c listen_addresses=127.0.0.1"
  (
    close_inherited_fds
    exec setsid runuser -u postgres -- "$bin/pg_ctl" -D "$data" -o "$opts" -w -t 30 start
  ) >>"$current_log" 2>&1 </dev/null || die "postgres did not start within 30 s"
  head -n 1 "$data/postmaster.pid" >"$pids/postgres.pid"

  local psql=("$bin/psql" -X -q -h 127.0.0.1 -p "$pg_port" -U postgres)
  if [ -z "$(timeout 30 "${psql[@]}" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$database'" 2>>"$current_log")" ]; then
    timeout 30 "$bin/createdb" -h 127.0.0.1 -p "$pg_port" -U postgres "$database" >>"$current_log" 2>&1 ||
      die "createdb $database failed"
  fi
  say "postgres ready on 127.0.0.1:$pg_port, database $database ($(elapsed_since "$t0"))"
}

stop_postgres() {
  local root data bin pid
  root="$(pg_root)"
  data="$root/data"
  pid="$(pid_of postgres)"
  if [ -f "$data/postmaster.pid" ]; then
    pid="$(head -n 1 "$data/postmaster.pid")"
  fi
  if is_ours "$pid" "$data"; then
    bin="$(pg_bindir)"
    if ! runuser -u postgres -- "$bin/pg_ctl" -D "$data" stop -m fast -w -t 30 >>"$logs/postgres.log" 2>&1; then
      say "postgres did not stop within 30 s: immediate shutdown"
      killed=1
      runuser -u postgres -- "$bin/pg_ctl" -D "$data" stop -m immediate -w -t 10 >>"$logs/postgres.log" 2>&1 ||
        { is_ours "$pid" "$data" && kill -KILL "$pid" 2>/dev/null; } || true
    fi
    say "stopped postgres"
  fi
  rm -f "$pids/postgres.pid"
}
