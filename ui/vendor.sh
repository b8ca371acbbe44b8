#!/usr/bin/env bash
# Re-fetches the UI's vendored libraries from the npm registry (npm pack; no node_modules,
# nothing runs at install) into ui/v6flow_ui/vendor/, with their licence files. The UI needs no
# build: the files are plain ES modules, and the one bare import (hooks -> "preact") is rewritten
# to a relative path so the browser resolves it without an import map.
#   ui/vendor.sh            (then review `git diff ui/v6flow_ui/vendor` and commit)
set -euo pipefail
cd "$(dirname "$0")"
PREACT=11.2.0
HTM=3.1.1
UQR=0.1.3

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "preact@$PREACT" "htm@$HTM" "uqr@$UQR" >/dev/null)
for pkg in "preact-$PREACT" "htm-$HTM" "uqr-$UQR"; do
  mkdir -p "$work/$pkg" && tar -xzf "$work/$pkg.tgz" -C "$work/$pkg"
done

out=v6flow_ui/vendor  # the package's data (ui/pyproject.toml)
rm -rf "$out" && mkdir -p "$out/licenses"
cp "$work/preact-$PREACT/package/dist/preact.mjs" "$out/preact.js"
sed 's/from"preact"/from".\/preact.js"/g; s/from "preact"/from ".\/preact.js"/g' \
  "$work/preact-$PREACT/package/hooks/dist/hooks.mjs" > "$out/hooks.js"
cp "$work/htm-$HTM/package/dist/htm.mjs" "$out/htm.js"
cp "$work/uqr-$UQR/package/dist/index.mjs" "$out/uqr.js"
cp "$work/preact-$PREACT/package/LICENSE" "$out/licenses/preact-LICENSE.txt"
cp "$work/htm-$HTM/package/LICENSE" "$out/licenses/htm-LICENSE.txt"
cp "$work/uqr-$UQR/package/LICENSE" "$out/licenses/uqr-LICENSE.txt"
# source maps reference files that are not vendored
sed -i '/^\/\/# sourceMappingURL=/d; s/\/\/# sourceMappingURL=[^ ]*$//' "$out"/*.js
if grep -l 'from *"[a-z@]' "$out"/*.js; then
  echo "a vendored module still has a bare import (see above)" >&2; exit 1
fi
cat > "$out/VERSIONS.txt" <<VERSIONS
preact $PREACT (MIT) dist/preact.mjs, hooks/dist/hooks.mjs
htm $HTM (Apache-2.0) dist/htm.mjs
uqr $UQR (MIT) dist/index.mjs
VERSIONS
echo "vendored into ui/$out:"; ls -l "$out"
