#!/usr/bin/env bash
# Proves that vendor/burn-backend is upstream burn-backend 0.22.1 plus vendor/burn-backend.patch
# and nothing else, and that the build really uses it:
# 1. fetches the published crate through cargo (crates.io) into a temporary folder and checks
#    its sha256 against the one recorded here;
# 2. applies the patch to a copy and compares the result with the vendored tree, file by file;
# 3. checks that `cargo tree` resolves burn-backend to the vendored path (if Burn is upgraded
#    and the patch no longer applies, Cargo only warns; this fails instead).
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=0.22.1
SHA256=4e50f934127d772ca3a687e7aa5f9fd671cc66dec253d383f4391b1a97031401

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/fetch/src"
cat >"$work/fetch/Cargo.toml" <<EOF
[package]
name = "fetch-burn-backend"
version = "0.0.0"
edition = "2021"
[dependencies]
burn-backend = "=$VERSION"
EOF
: >"$work/fetch/src/lib.rs"
(cd "$work/fetch" && cargo fetch --quiet)
crate=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/burn-backend-$VERSION.crate | head -1)
echo "$SHA256  $crate" | sha256sum --check --quiet || {
    echo "error: $crate does not have the recorded sha256 $SHA256" >&2
    exit 1
}
mkdir "$work/upstream"
tar -xzf "$crate" -C "$work/upstream"
rm -f "$work/upstream/burn-backend-$VERSION"/{.cargo-ok,.cargo_vcs_info.json,Cargo.lock}
(cd "$work/upstream" && patch --quiet -p1 <"$OLDPWD/vendor/burn-backend.patch")
if ! diff -r "$work/upstream/burn-backend-$VERSION" vendor/burn-backend; then
    echo "error: vendor/burn-backend is not burn-backend $VERSION + vendor/burn-backend.patch" >&2
    echo "(the differences are above; regenerate the patch or restore the tree)" >&2
    exit 1
fi
if ! cargo tree --quiet --invert burn-backend --prefix none 2>/dev/null | head -1 | grep -q "(${PWD}/vendor/burn-backend)"; then
    echo "error: the build does not use vendor/burn-backend (cargo tree):" >&2
    cargo tree --invert burn-backend --prefix none | head -3 >&2
    exit 1
fi
echo "vendor/burn-backend = burn-backend $VERSION (sha256 $SHA256) + vendor/burn-backend.patch, and the build uses it"
