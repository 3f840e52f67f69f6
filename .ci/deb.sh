#!/bin/bash
# deb.sh: the Debian packages, built and checked as a user would get them.
#  1. installs the packaging tools, copies the tree (the files git knows,
#     without build folders) and installs its Build-Depends (debian/control);
#  2. dpkg-buildpackage -b -us -uc in the copy (tests skipped: .ci/run runs
#     the suite), lintian on the result (fails on any error);
#  3. installs the four packages with apt-get into a throwaway Debian 12 root
#     (debootstrap --variant=minbase from the mirror of /etc/apt/sources*,
#     cached as a tarball in $ALIGNSEG_DEB_CACHE, unpacked fresh each run)
#     that has none of the build dependencies, and there checks, from the
#     installed paths with no variable pointing at a build:
#       alignseg --help; alignseg segment on data/samples/chelsea.png (the tiny
#       reference model); the man pages and completions are in place;
#       LANGUAGE=zh_CN alignseg-viewer --help shows our Chinese strings; the
#       GSettings schema is compiled into the system's schemas; the viewer
#       under Xvfb with LANGUAGE=zh_CN writes a screenshot (kept as
#       $ALIGNSEG_DEB_WORK/viewer-zh_CN.png; docs/screenshots/installed-deb-zh_CN.png
#       is one) and its status line is in Chinese.
# Needs root (chroot) and network to the Debian mirror. About 3-6 minutes
# after the first run (debootstrap adds about 5 the first time).
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
export DEBIAN_FRONTEND=noninteractive
work=${ALIGNSEG_DEB_WORK:-/var/tmp/alignseg-deb}
cache=${ALIGNSEG_DEB_CACHE:-/var/cache/alignseg-ci}
mkdir -p "$work" "$cache"
log() { echo "deb.sh: $*"; }

log "packaging tools"
apt-get install -y -qq --no-install-recommends devscripts debhelper lintian fakeroot dpkg-dev \
    debootstrap > /dev/null

log "copy of the tree in $work/build/alignseg"
rm -rf "$work/build"
mkdir -p "$work/build/alignseg"
if git -C "$src" rev-parse --git-dir > /dev/null 2>&1; then
    git -C "$src" ls-files -co --exclude-standard -z |
        grep -zv -e '^build' -e '^obj-' | tar --null -T - -cf - | tar -xf - -C "$work/build/alignseg"
else
    tar --exclude='./build*' --exclude='./obj-*' -cf - . | tar -xf - -C "$work/build/alignseg"
fi
apt-get build-dep -y -qq "$work/build/alignseg" > /dev/null

log "dpkg-buildpackage -b -us -uc (log: $work/dpkg-buildpackage.log)"
start=$(date +%s)
if ! (cd "$work/build/alignseg" &&
      DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" dpkg-buildpackage -b -us -uc) \
        > "$work/dpkg-buildpackage.log" 2>&1; then
    tail -40 "$work/dpkg-buildpackage.log"
    log "FAIL: dpkg-buildpackage"
    exit 1
fi
log "built in $(( $(date +%s) - start )) s:"
(cd "$work/build" && ls -l ./*.deb | awk '{printf "  %8d  %s\n", $5, $9}')

log "lintian"
changes=$(ls "$work"/build/*.changes)
lint=0
lintian --fail-on error --pedantic -I "$changes" > "$work/lintian.log" 2>&1 || lint=$?
sed -i '/running with root privileges/d' "$work/lintian.log"
cat "$work/lintian.log"
[ $lint = 0 ] || { log "FAIL: lintian reports errors (exit $lint)"; exit 1; }
[ -s "$work/lintian.log" ] || log "lintian --pedantic -I: no tags"

log "throwaway Debian 12 root"
base=$cache/bookworm-minbase.tar
if [ ! -f "$base" ]; then
    mirror=$(grep -hoE '(URIs:|deb) +https?://[^ ]+' /etc/apt/sources.list /etc/apt/sources.list.d/* 2> /dev/null |
        awk '{print $2}' | grep -v security | head -1)
    mirror=${mirror:-http://deb.debian.org/debian}
    log "debootstrap --variant=minbase bookworm from $mirror (once; cached in $base)"
    rm -rf "$work/base"
    debootstrap --variant=minbase bookworm "$work/base" "$mirror" > "$work/debootstrap.log" 2>&1 ||
        { tail -20 "$work/debootstrap.log"; log "FAIL: debootstrap (network to $mirror?)"; exit 1; }
    tar -C "$work/base" -cf "$base.tmp" . && mv "$base.tmp" "$base"
    rm -rf "$work/base"
fi
root=$work/root
cleanup() {
    for m in dev/pts dev proc; do mountpoint -q "$root/$m" && umount -l "$root/$m"; done
    return 0
}
trap cleanup EXIT
cleanup
rm -rf "$root"
mkdir -p "$root"
tar -xf "$base" -C "$root"
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
cp /etc/resolv.conf "$root/etc/resolv.conf"
mkdir -p "$root/tmp/debs" "$root/tmp/check"
cp "$work"/build/alignseg_*.deb "$work"/build/alignseg-viewer_*.deb "$work"/build/libalignseg0_*.deb \
    "$work"/build/libalignseg-dev_*.deb "$root/tmp/debs/"
cp data/samples/chelsea.png tests/data/reference/infer_tiny/alignseg.pth "$root/tmp/check/"
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$@"; }
# a build dependency would be a packaging bug: the root must not have them
in_root dpkg -s libgtk-4-dev > /dev/null 2>&1 && { log "FAIL: the root has build dependencies"; exit 1; }

log "apt-get install ./*.deb in the root"
in_root apt-get update -qq
# xvfb, xauth: to run the viewer; a CJK font so the screenshot shows the Chinese text
in_root sh -c 'cd /tmp/debs && apt-get install -y -qq --no-install-recommends ./*.deb xvfb xauth fonts-wqy-microhei' \
    > "$work/root-install.log" 2>&1 || { tail -20 "$work/root-install.log"; log "FAIL: apt-get install ./*.deb"; exit 1; }

status=0
check() { # check WHAT COMMAND...
    local what=$1
    shift
    if "$@"; then log "ok: $what"; else log "FAIL: $what"; status=1; fi
}
check "alignseg --help lists the commands" in_root sh -c "alignseg --help | grep -q '^  segment '"
check "alignseg segment data/samples/chelsea.png" in_root sh -c \
    'cd /tmp/check && alignseg segment --threads 1 --encoder-heads 3 --size 64 -m alignseg.pth -o out chelsea.png &&
     test -s out/chelsea.labels.png && test -s out/chelsea.overlay.png'
check "man pages, completions, pkg-config file, header and library in place" in_root sh -c \
    'test -f /usr/share/man/man1/alignseg.1.gz && test -f /usr/share/man/man1/alignseg-viewer.1.gz &&
     test -f /usr/share/bash-completion/completions/alignseg &&
     test -f /usr/share/bash-completion/completions/alignseg-viewer &&
     test -f /usr/include/alignseg/alignseg.h && test -f /usr/lib/x86_64-linux-gnu/pkgconfig/alignseg.pc &&
     test -e /usr/lib/x86_64-linux-gnu/libalignseg.so.0'
check "the GSettings schema is compiled into the system's schemas" in_root sh -c \
    'grep -q io.github.alignseg.Viewer /usr/share/glib-2.0/schemas/gschemas.compiled'
check "LANGUAGE=zh_CN alignseg-viewer --help is in Chinese (our catalogue, installed path)" in_root sh -c \
    'LANGUAGE=zh_CN LC_ALL=C.UTF-8 alignseg-viewer --help | grep -q "AlignSeg 检查点或 DINO 骨干网络"'
rm -f "$work/viewer-zh_CN.png"
check "alignseg-viewer under Xvfb, LANGUAGE=zh_CN, writes a screenshot" in_root sh -c \
    'cd /tmp/check && LANGUAGE=zh_CN LC_ALL=C.UTF-8 OPENBLAS_NUM_THREADS=1 timeout 240 \
     xvfb-run -a -s "-screen 0 1280x800x24" alignseg-viewer --untrained --threads 1 --size 224 \
     --screenshot /tmp/check/viewer-zh_CN.png chelsea.png > viewer.log 2>&1; rc=$?;
     cat viewer.log; test $rc = 0 && test -s viewer-zh_CN.png'
# the window's own status line (printed by --screenshot), in the zh_CN catalogue's words
check "the viewer's window is in Chinese (status line: 输入 … 个原型)" \
    grep -q 'status="chelsea.png — 451×300 — 输入 224×224.*个原型' "$root/tmp/check/viewer.log"
[ -f "$root/tmp/check/viewer-zh_CN.png" ] && cp "$root/tmp/check/viewer-zh_CN.png" "$work/" &&
    log "screenshot: $work/viewer-zh_CN.png"
[ $status = 0 ] && log "all checks passed"
exit $status
