#!/usr/bin/env bash
# `npm start`: compile, then validate the registry in the current directory (npm runs scripts in
# the package root), synthesize every stack and print a summary per tenant (bin/start.ts). Phase
# lines with elapsed times go to stderr (scripts/phase.sh); stdout is the summary.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
PHASE_PREFIX="npm start"
source "$root/scripts/phase.sh"
phase build "$root/node_modules/.bin/tsc" -p "$root/tsconfig.json"
exec node "$root/dist/bin/start.js" "$@"
