#!/usr/bin/env bash
# Fetches MathJax for the book into book/src/mathjax/tex-svg.js (ignored by git), so that the
# book's equations render without network access. Source: npm `mathjax@3.2.2` (Apache-2.0), its
# single-file TeX-to-SVG build `es5/tex-svg.js` (fonts included, 2 MB). Checked by sha256.
# Without this file the book loads the same file from the jsDelivr CDN (book/mathjax.js).
#
# Idempotent: a present, verified file is not fetched again. Needs: npm, tar, sha256sum.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION="3.2.2"
TGZ_SHA256="1b9c0a1c44df864e915690558e72adb9cc5203360daefd385084ced3b6c64c09"
JS_SHA256="d4295dc33744836935c1399feece5159577b34c5c8ffb9f1c6324cd82e03a882"
DEST="book/src/mathjax/tex-svg.js"

if [ -f "$DEST" ] && echo "$JS_SHA256  $DEST" | sha256sum -c --quiet - 2>/dev/null; then
    exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "mathjax@$VERSION" >/dev/null)
echo "$TGZ_SHA256  $tmp/mathjax-$VERSION.tgz" | sha256sum -c --quiet -
tar -xzf "$tmp/mathjax-$VERSION.tgz" -C "$tmp" package/es5/tex-svg.js package/LICENSE
echo "$JS_SHA256  $tmp/package/es5/tex-svg.js" | sha256sum -c --quiet -
mkdir -p "$(dirname "$DEST")"
cp "$tmp/package/LICENSE" "$(dirname "$DEST")/LICENSE"
cp "$tmp/package/es5/tex-svg.js" "$DEST.tmp"
mv "$DEST.tmp" "$DEST"
echo "MathJax $VERSION: $DEST"
