#!/usr/bin/env bash
# Prints a folder whose `node` is the Node.js major this project supports (.nvmrc, the same major as
# package.json engines and the Dockerfile's base). When the machine's own node is that major, that is its
# folder; otherwise the newest release of the major is installed once from the npm registry, where Node.js
# is published as the `node-linux-<arch>` package (the binary inside a registry package, nothing else is
# fetched), into a per-user cache. Use: PATH="$(bash scripts/ensure-node.sh):$PATH".
set -euo pipefail
cd "$(dirname "$0")/.."
want=$(tr -d ' \nv' <.nvmrc)
have=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo none)
if [ "$have" = "$want" ]; then
  dirname "$(command -v node)"
  exit 0
fi
case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64) arch=arm64 ;;
  *) echo "ensure-node: no Node.js $want package for $(uname -m); install Node.js $want yourself" >&2; exit 1 ;;
esac
cache="${XDG_CACHE_HOME:-$HOME/.cache}/modelplane/node-$want-linux-$arch"
if [ ! -x "$cache/bin/node" ]; then
  echo "ensure-node: this machine has Node.js $have; installing Node.js $want (node-linux-$arch) into $cache" >&2
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "node-linux-$arch@$want" >/dev/null)
  mkdir -p "$tmp/node" "$(dirname "$cache")"
  tar -xzf "$tmp"/node-linux-"$arch"-*.tgz -C "$tmp/node" --strip-components=1 package/bin package/include
  rm -rf "$cache"
  mv "$tmp/node" "$cache"
fi
echo "ensure-node: using $("$cache/bin/node" --version) from $cache/bin" >&2
echo "$cache/bin"
