#!/usr/bin/env bash
# Makes QEMU user-mode emulation available to buildah through binfmt_misc, so that a
# RUN step of a foreign-architecture image executes on this host.
#
# x86-64 host: enables qemu-aarch64 (linux/arm64) and qemu-arm (linux/arm/v7).
# arm64 host:  arm64 is native; enables qemu-x86_64 only, because ops/farm.sh runs its
#              linux/amd64 agent emulated there.
# Needs root (or a privileged container): binfmt_misc is a kernel-wide setting.
set -euo pipefail

readonly binfmt_dir=/proc/sys/fs/binfmt_misc

die() {
  echo "binfmt.sh: $*" >&2
  exit 1
}

case "$(uname -m)" in
  x86_64 | amd64) handlers=(qemu-aarch64 qemu-arm) ;;
  aarch64 | arm64) handlers=(qemu-x86_64) ;;
  *) die "unsupported host architecture $(uname -m) (expected x86_64 or aarch64)" ;;
esac

handler_enabled() {
  [ -r "$binfmt_dir/$1" ] && [ "$(head -n 1 "$binfmt_dir/$1")" = enabled ]
}

# Nothing to change (and no privilege needed) when every handler is already on.
all_enabled=1
for h in "${handlers[@]}"; do
  handler_enabled "$h" || all_enabled=0
done
if [ "$all_enabled" -eq 1 ]; then
  echo "binfmt.sh: ${handlers[*]} already enabled"
  exit 0
fi

[ "$(id -u)" -eq 0 ] || die "enabling ${handlers[*]} needs root (run: sudo $0)"
command -v update-binfmts >/dev/null ||
  die "update-binfmts not found: install binfmt-support and qemu-user-static (ops/install-deps.sh)"

# binfmt_misc is not mounted in some containers and minimal systems.
if [ ! -e "$binfmt_dir/register" ]; then
  mount -t binfmt_misc binfmt_misc "$binfmt_dir" 2>/dev/null ||
    die "cannot mount binfmt_misc on $binfmt_dir: run on the host as root, or in a privileged container"
fi

# A read-only /proc/sys (an unprivileged container) makes the writes below fail.
if [ ! -w "$binfmt_dir/register" ]; then
  die "$binfmt_dir/register is not writable: run on the host as root, or in a privileged container"
fi

for h in "${handlers[@]}"; do
  if handler_enabled "$h"; then
    continue
  fi
  # The handler definitions come from qemu-user-static's files for binfmt-support.
  update-binfmts --display "$h" >/dev/null 2>&1 ||
    die "no binfmt definition for $h: install qemu-user-static (ops/install-deps.sh)"
  if ! out="$(update-binfmts --enable "$h" 2>&1)"; then
    die "update-binfmts --enable $h failed: $out"
  fi
  handler_enabled "$h" || die "update-binfmts --enable $h ran but $binfmt_dir/$h is not enabled: $out"
  interpreter="$(sed -n 's/^interpreter //p' "$binfmt_dir/$h")"
  [ -x "$interpreter" ] || die "$h is enabled but its interpreter '$interpreter' is missing"
done

echo "binfmt.sh: enabled ${handlers[*]}"
