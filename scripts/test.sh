#!/usr/bin/env bash
# `npm test`: every test of the project, on a fresh machine of this kind.
# Installs what the tests need when it is missing, type-checks, then runs jest.
set -euo pipefail
cd "$(dirname "$0")/.."
export CHECKPOINT_DISABLE=1
# Each phase says when it begins and how long it took, on stderr (scripts/phase.sh).
PHASE_PREFIX="npm test"
source scripts/phase.sh

# Debian packages of the tests that run real services: PostgreSQL 15, PgBouncer in front of it,
# Redis (test/support/postgres.ts, pgbouncer.ts, redis.ts; each test starts its own on free
# ports), and headless Chromium for the pages the tests look at (test/support/chromium.ts):
# installed only when missing.
missing=()
command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || missing+=(pgbouncer)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v openssl >/dev/null || missing+=(openssl)
command -v chromium >/dev/null || [ -n "${TENANCY_CHROMIUM:-}" ] || missing+=(chromium)
if [ -z "${TENANCY_PG_BIN:-}" ] && [ ! -x /usr/lib/postgresql/15/bin/initdb ]; then missing+=(postgresql-15); fi
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "npm test: missing Debian packages ${missing[*]} (run as root, or: sudo apt-get install -y ${missing[*]})" >&2; exit 1
  fi
  phase_begin "installing Debian packages (${missing[*]})"
  apt_log="$(mktemp)"
  apt-get update -qq >"$apt_log" 2>&1 || { cat "$apt_log" >&2; exit 1; }
  # Debian releases after bookworm have no postgresql-15: take the default major (the tests use the newest installed).
  if [[ " ${missing[*]} " == *" postgresql-15 "* ]] && ! apt-cache show postgresql-15 >/dev/null 2>&1; then
    missing=("${missing[@]/postgresql-15/postgresql}")
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$apt_log" 2>&1 || { cat "$apt_log" >&2; exit 1; }
  rm -f "$apt_log"
  # The packages' own services (6432, 6379) are not used by the tests, which start their own on free ports.
  for service in pgbouncer redis-server; do
    if [[ " ${missing[*]} " == *" $service "* ]] && [ -x "/etc/init.d/$service" ]; then
      "/etc/init.d/$service" stop >/dev/null 2>&1 || true
    fi
  done
  phase_end
fi

# Dependencies (a fresh clone has none).
[ -d node_modules ] || phase "npm ci" npm ci --no-audit --no-fund

# The offline plan tests need terraform and a filesystem mirror holding hashicorp/aws 5.100.0.
mirror="${TENANCY_TF_MIRROR:-/opt/tf-plugins}"
if ! command -v terraform >/dev/null; then
  echo "npm test: terraform is not on the PATH; the offline plan tests need terraform >= 1.10" >&2; exit 1
fi
if [ ! -d "$mirror/registry.terraform.io/hashicorp/aws" ]; then
  echo "npm test: no hashicorp/aws provider mirror at $mirror (set TENANCY_TF_MIRROR)" >&2; exit 1
fi
# cdktf points terraform at one shared plugin cache ($HOME/.terraform.d/plugin-cache); two inits that
# fill an empty cache at once race ("mkdir …: file exists"), and the deploy tests run inits in
# parallel. Fill it once from the mirror before any test runs.
plugin_cache="$HOME/.terraform.d/plugin-cache"
if [ ! -e "$plugin_cache/registry.terraform.io/hashicorp/aws/5.100.0/linux_amd64" ]; then
  warm="$(mktemp -d)"
  printf 'terraform {\n  required_providers {\n    aws = { source = "hashicorp/aws", version = "5.100.0" }\n  }\n}\n' >"$warm/main.tf"
  printf 'provider_installation {\n  filesystem_mirror {\n    path    = "%s"\n    include = ["registry.terraform.io/hashicorp/aws"]\n  }\n}\n' "$mirror" >"$warm/terraformrc"
  mkdir -p "$plugin_cache"
  if ! (cd "$warm" && TF_CLI_CONFIG_FILE="$warm/terraformrc" TF_PLUGIN_CACHE_DIR="$plugin_cache" terraform init -input=false -backend=false -no-color >"$warm/init.log" 2>&1); then
    cat "$warm/init.log" >&2; rm -rf "$warm"
    echo "npm test: terraform init from the provider mirror $mirror failed" >&2; exit 1
  fi
  rm -rf "$warm"
fi

# The deploy tests (test/deploy) apply the stacks against a local AWS API: moto 5 (Python; not on apt or npm).
if ! command -v moto_server >/dev/null && [ -z "${TENANCY_MOTO_PYTHON:-}" ]; then
  echo "npm test: moto_server is not on the PATH; the deploy tests need moto 5: pip install \"moto[server]==5.2.1\" (or set TENANCY_MOTO_PYTHON)" >&2; exit 1
fi

# The chart tests run real Helm (test/support/helm.ts): fetched once into node_modules/.cache.
phase_begin helm
helm="$(bash scripts/fetch-helm.sh)" || { phase_end 1; echo "npm test: could not fetch helm (scripts/fetch-helm.sh); set TENANCY_HELM to a helm v3.17 binary" >&2; exit 1; }
phase_end
export TENANCY_HELM="$helm"

phase type-check npx tsc -p tsconfig.test.json
phase build npx tsc -p tsconfig.json

results="$(mktemp)"
# The tests' own temporary directory: whatever a test leaves behind in it is reported, then removed.
# Traversable by the postgres user (the tests' PostgreSQL and PgBouncer run as it, in directories below).
test_tmp="$(mktemp -d "${TMPDIR:-/tmp}/tenancy-npm-test.XXXXXX")"
chmod 711 "$test_tmp"
trap 'rm -f "$results"; rm -rf "$test_tmp"' EXIT
status=0
# jest prints its own progress, file by file: no ticker.
phase_begin jest --no-ticker
TMPDIR="$test_tmp" npx jest --ci --json --outputFile="$results" --cacheDirectory "${TMPDIR:-/tmp}/jest_tenancy" "$@" || status=$?
phase_end "$status"
left="$(find "$test_tmp" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort)"
if [ -n "$left" ]; then
  echo "npm test: the tests left $(printf '%s\n' "$left" | wc -l) entries in their temporary directory (removed now):" >&2
  printf '%s\n' "$left" | sed -E 's/[A-Za-z0-9]{6}$/XXXXXX/' | sort | uniq -c | sed 's/^/  /' >&2
  status=1
fi
node -e '
  const r = JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8"));
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests} skipped`);
  if (r.numTotalTests === 0) { console.error("npm test: no test ran"); process.exit(1); }
' "$results" || status=1
exit "$status"
