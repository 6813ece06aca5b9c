#!/usr/bin/env bash
# The demo: a local 3-master sandbox with mixed data, a check, a dry-run plan
# of a manual failover, the run itself, and what was recorded.
set -euo pipefail
cd "$(dirname "$0")/.."
rr() { node dist/src/cli/main.js "$@"; }
say() { printf '\n\033[1m== %s\033[0m\n$ redis-runbook %s\n' "$1" "${*:2}"; }

rr sandbox down --name demo >/dev/null 2>&1 || true
say "Start a sandbox: 3 masters x 1 replica on 127.0.0.1:7000-7005, 20000 keys" sandbox up --keys 20000
INV=$(rr sandbox up --name demo --keys 20000)
echo "$INV"

say "Check it, as redis-cli --cluster check would" check --inventory "$INV" --cluster source
rr check --inventory "$INV" --cluster source

say "Plan a manual failover of the master on 7000 (read-only: nothing changes)" plan manual-failover --inventory "$INV" --param node=127.0.0.1:7000 --out /tmp/redis-runbook-demo-plan.json
rr plan manual-failover --inventory "$INV" --param node=127.0.0.1:7000 --out /tmp/redis-runbook-demo-plan.json

say "Run exactly that plan, unattended" run --plan /tmp/redis-runbook-demo-plan.json --yes
OUT=$(rr run --plan /tmp/redis-runbook-demo-plan.json --yes | tee >(cat >&2))   # not /dev/stderr: tee would reopen a log file at offset 0
ID=$(printf '%s\n' "$OUT" | sed -n 's/^run \([^:]*\):.*/\1/p' | head -1)

say "What was done, step by step, with every command sent" show "$ID"
rr show "$ID" | head -40

cat <<MSG

Demo done. The sandbox is still up; try, from this directory (npx runs the local build):
  npx redis-runbook run manual-failover --inventory $INV --param node=127.0.0.1:7003   # guided: asks before each step
  npx redis-runbook run failover-drill --inventory $INV --param node=127.0.0.1:7001    # stops a master, measures the outage
  npx redis-runbook runs
  npx redis-runbook sandbox down                                                       # stop it and delete its files
MSG
