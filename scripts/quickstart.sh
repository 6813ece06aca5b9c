#!/usr/bin/env bash
# Quick start, step 1: install what is missing, build, and run the demo.
# Debian/Ubuntu. Uses sudo for apt-get when not root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
bash scripts/demo.sh
