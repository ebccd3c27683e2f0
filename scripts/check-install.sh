#!/usr/bin/env bash
# The README's npm install path, checked from this clone: `npm pack`, then `npm install -g` of the
# tarball into a throw-away prefix, then the installed `floodgate` from / (outside the clone, with
# no npx): --version, policy check and scan. Fails if npm warns about install scripts, which
# floodgate must not have (it builds in prepack). Nothing is installed outside the prefix.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$repo"
tarball="$(npm pack --silent --pack-destination "$work" | tail -n 1)"
echo "packed $tarball ($(du -k "$work/$tarball" | cut -f1) kB)"
if tar -tzf "$work/$tarball" | grep -Eq 'floodgate-linux-x64|\.map$|package/src/|package/test/'; then
  echo "check-install: the tarball holds files it should not:" >&2
  tar -tzf "$work/$tarball" | grep -E 'floodgate-linux-x64|\.map$|package/src/|package/test/' >&2
  exit 1
fi

npm_config_prefix="$work/prefix" npm install -g "$work/$tarball" --no-audit --no-fund >"$work/install.log" 2>&1 || { cat "$work/install.log" >&2; exit 1; }
cat "$work/install.log"
if grep -qi 'install-scripts\|npm warn' "$work/install.log"; then
  echo "check-install: npm warned while installing the tarball (see above)" >&2
  exit 1
fi

cd /
floodgate="$work/prefix/bin/floodgate"
expected="$(node -p "require('$repo/package.json').version")"
version="$(FLOODGATE_ETC="$work/etc" "$floodgate" --version)"
[ "$version" = "$expected" ] || { echo "check-install: --version says $version, package.json $expected" >&2; exit 1; }
FLOODGATE_ETC="$work/etc" "$floodgate" policy check | head -n 1 | grep -q "^# $work/prefix/lib/node_modules/floodgate/policies/default.yaml: valid$" \
  || { echo "check-install: policy check did not check the installed default policy" >&2; exit 1; }
"$floodgate" scan --input "$repo/test/fixtures/tables/mixed/netstat-an.txt" --top 3 | head -n 1 | grep -q '^583 sockets matched' \
  || { echo "check-install: scan --input gave the wrong count" >&2; exit 1; }
"$floodgate" scan --top 3 >/dev/null
echo "check-install: ok: npm pack, npm install -g and floodgate --version ($version), policy check and scan from /"
