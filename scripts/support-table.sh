#!/usr/bin/env bash
# Runs the server-matrix test files (and the AOF copy across server versions) with their outcomes recorded, then writes docs/support.md's
# table from that record. Needs REDIS_BUILDS (a directory of server builds); without it only the
# default server is covered, and the table says so by its columns.
set -euo pipefail
cd "$(dirname "$0")/.."
log="$(mktemp /tmp/rr-support-XXXXXX.jsonl)"
RR_SUPPORT_LOG="$log" node --test --test-concurrency=1 --test-timeout=900000 --test-force-exit \
  dist/test/e2e/server-versions.test.js dist/test/e2e/server-upgrades.test.js dist/test/e2e/server-pairs.test.js dist/test/e2e/migrate-copy-aof-versions.test.js
node scripts/support-table.mjs "$log" --write docs/support.md
npx prettier --write --log-level warn docs/support.md
