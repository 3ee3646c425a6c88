#!/usr/bin/env bash
# run.sh: `make bench`. Installs nginx, HAProxy, wrk and h2load from Debian
# when missing, then runs the benchmark driver (bench/driver), which does
# everything else inside a private network namespace. Flags go to the
# driver: ./bench/run.sh -quick, or make bench BENCH_FLAGS='-proxies nginx,haproxy'.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

# command -> Debian package
declare -A pkgs=([nginx]=nginx-light [haproxy]=haproxy [wrk]=wrk [h2load]=nghttp2-client
  [taskset]=util-linux [ip]=iproute2)
missing=()
for cmd in "${!pkgs[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null 2>&1 \
    || missing+=("${pkgs[$cmd]}")
done
if ((${#missing[@]})); then
  if [[ "$(id -u)" != 0 ]]; then
    echo "bench: missing packages ${missing[*]}; run as root (or install them) first" >&2
    exit 1
  fi
  echo "bench: installing ${missing[*]}" >&2
  # Keep Debian from starting nginx and HAProxy as system services: the
  # benchmark starts its own, inside its namespace.
  added_policy=
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    added_policy=1
  fi
  trap '[[ -n "$added_policy" ]] && rm -f /usr/sbin/policy-rc.d' EXIT
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [[ -n "$added_policy" ]] && rm -f /usr/sbin/policy-rc.d
  trap - EXIT
fi
export PATH="$PATH:/usr/sbin:/sbin"

# shellcheck disable=SC2086 # BENCH_FLAGS is a list of flags
exec "${GO:-go}" run ./bench/driver ${BENCH_FLAGS:-} "$@"
