#!/usr/bin/env bash
# Prints the path of a Node.js binary of the given major version, fetched
# from the npm registry (the node-<platform>-<arch> packages the `node`
# package installs from) into the user's cache on first use; nothing is
# installed system-wide. For benchmarks across runtimes: the project itself
# runs on Node 20, and Node 24 runs the int8 GEMM's fused dot where the CPU
# has AVX-VNNI (assembly/qgemm.ts dotFused).
#   "$(bash scripts/node-from-npm.sh 24)" --import tsx bench/vit.ts ...
set -euo pipefail
major="${1:?usage: scripts/node-from-npm.sh MAJOR (e.g. 24)}"
[[ "$major" =~ ^[0-9]+$ ]] || { echo "node-from-npm: MAJOR must be a number, got '$major'" >&2; exit 2; }
pkg="node-$(node -p 'process.platform + "-" + process.arch')"
# the newest release of that major (npm view prints one version or a list)
version=$( (npm view "$pkg@$major" version --json 2>/dev/null || true) | node -e '
  let t = ""; process.stdin.on("data", (d) => (t += d)).on("end", () => {
    try { const v = [].concat(JSON.parse(t)).filter((x) => typeof x === "string");
      v.sort((a, b) => { const x = a.split(".").map(Number), y = b.split(".").map(Number); return x[0] - y[0] || x[1] - y[1] || x[2] - y[2]; });
      console.log(v.at(-1) ?? ""); } catch { console.log(""); } });')
[ -n "$version" ] || { echo "node-from-npm: no $pkg@$major in the npm registry" >&2; exit 1; }
dir="${XDG_CACHE_HOME:-$HOME/.cache}/caitjs/node-$version"
if [ ! -x "$dir/bin/node" ]; then
  # unpacked beside the cache entry, then renamed into place: never a half-written entry
  mkdir -p "$(dirname "$dir")"
  tmp=$(mktemp -d "$(dirname "$dir")/.node-XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack "$pkg@$version" --silent >/dev/null && tar xzf ./*.tgz)
  rm -rf "$dir"
  mv "$tmp/package" "$dir"
fi
"$dir/bin/node" -e 'process.exit(0)' || { echo "node-from-npm: $dir/bin/node does not run here" >&2; exit 1; }
echo "$dir/bin/node"
