#!/usr/bin/env bash
# `npm test`: every test of the project, on a fresh machine of this kind.
# Installs what the tests need when it is missing, type-checks, then runs jest.
set -euo pipefail
cd "$(dirname "$0")/.."
export CHECKPOINT_DISABLE=1

# Dependencies (a fresh clone has none).
[ -d node_modules ] || npm ci --no-audit --no-fund

# The offline plan tests need terraform and a filesystem mirror holding hashicorp/aws 5.100.0.
mirror="${TENANCY_TF_MIRROR:-/opt/tf-plugins}"
if ! command -v terraform >/dev/null; then
  echo "npm test: terraform is not on the PATH; the offline plan tests need terraform >= 1.10" >&2; exit 1
fi
if [ ! -d "$mirror/registry.terraform.io/hashicorp/aws" ]; then
  echo "npm test: no hashicorp/aws provider mirror at $mirror (set TENANCY_TF_MIRROR)" >&2; exit 1
fi

npx tsc -p tsconfig.test.json
npx tsc -p tsconfig.json

results="$(mktemp)"
trap 'rm -f "$results"' EXIT
status=0
npx jest --ci --json --outputFile="$results" "$@" || status=$?
node -e '
  const r = JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8"));
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests} skipped`);
  if (r.numTotalTests === 0) { console.error("npm test: no test ran"); process.exit(1); }
' "$results" || status=1
exit "$status"
