#!/usr/bin/env bash
# Installs what redis-runbook needs on a fresh Debian/Ubuntu machine: the Debian
# packages (redis-server, redis-tools, openssh-server, rsync, iproute2, nftables, openssl, python3, chromium), the npm
# dependencies (npm ci), and the build. Safe to run again: it skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-cli >/dev/null || need+=(redis-tools)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v rsync >/dev/null || need+=(rsync)
command -v ssh >/dev/null || need+=(openssh-client)
# ss: decommission checks a port is closed before deleting files; ip and tc: `sandbox up --hosts`
# (network namespaces, veths, a bridge) and the tests' bandwidth limits.
{ command -v ss && command -v ip && command -v tc; } >/dev/null || need+=(iproute2)
command -v nft >/dev/null || need+=(nftables)   # the tests' one-way partitions and packet loss in a host's namespace
command -v openssl >/dev/null || need+=(openssl)     # sandbox --tls makes its CA and certificates
command -v python3 >/dev/null || need+=(python3-minimal)   # a test listener that never accepts (a connect that stalls)
command -v chromium >/dev/null || need+=(chromium)   # the run report's test renders the page in headless Chromium
if [ ${#need[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need[*]}"
  $SUDO apt-get update -qq
  # Installing redis-server may start a system Redis on 6379; the sandbox does not use that port.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

command -v node >/dev/null || { echo "Node.js 20.17+ is required (node not found)" >&2; exit 1; }
# better-sqlite3 is compiled here from source against this Node: no prebuilt binary is downloaded.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm_config_build_from_source=true npm ci --no-audit --no-fund
fi
npm run build --silent
echo "installed: $(redis-server --version | cut -d' ' -f1-3), node $(node --version)"
