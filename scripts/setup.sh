#!/bin/sh
# setup.sh: install alignseg's build dependencies from Debian 12 packages and
# build it into ./build (release, warnings as errors). Safe to run again.
set -eu
cd "$(dirname "$0")/.."

PKGS="build-essential meson ninja-build pkg-config libopenblas-dev libpng-dev
libjpeg62-turbo-dev zlib1g-dev libglib2.0-dev libgtk-4-dev gettext
desktop-file-utils appstream xvfb xauth libglib2.0-bin librsvg2-common python3-pil
dbus-daemon xdotool"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "setup: installing Debian packages:$missing"
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends $missing
fi

if [ ! -f build/build.ninja ]; then
    meson setup build -Dwerror=true
fi
ninja -C build
echo "setup: built into ./build (programs: build/app/alignseg, build/ui/alignseg-viewer)"
