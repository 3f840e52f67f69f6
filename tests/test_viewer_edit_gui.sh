#!/bin/sh
# test_viewer_edit_gui: corrections in the running viewer (issue 11, "Correct
# before export"), scripted with --action under Xvfb. Each run writes the
# corrected label map (edit.save-labels, an 8-bit PNG at the photo's size)
# and the checks compute what it must hold from a run without corrections,
# independently of the viewer's code:
#   - a brush dab is the disc of pixels whose centres are within the radius;
#   - undo removes the last dab, redo brings it back, a dab after an undo
#     forgets the redo;
#   - the eraser gives the model's labels back;
#   - a region click moves the whole 4-connected region (computed here by a
#     flood fill of the uncorrected map) to the chosen class;
#   - corrections survive a mass-slider move that keeps the grouping, are
#     dropped (with a notice) when the prototype count changes the grouping,
#     and Ctrl+Z's action brings them back;
#   - going to the next photo and back keeps the corrections;
#   - the segmentation view shows the corrected map (the screenshot differs
#     from the uncorrected one inside the photo);
#   - maps a person can read: tiles.detail opens the Map page (state view=map)
#     on a named map, an unknown name exits 2; 'the same colour scale for all
#     maps' changes the attention tiles' colours;
#   - --help documents the edit.* and tiles.* actions;
#   - no run writes a GLib WARNING or CRITICAL.
# Usage: test_viewer_edit_gui.sh VIEWER_BINARY  (env: ALIGNSEG_TESTDATA, GSETTINGS_SCHEMA_DIR)
# Skips (exit 77) without xvfb-run or Debian's python3-pil.
set -u
VIEWER=${1:?usage: test_viewer_edit_gui.sh VIEWER}
DATA=${ALIGNSEG_TESTDATA:-$(dirname "$0")/data}
PY=/usr/bin/python3

command -v xvfb-run >/dev/null 2>&1 || { echo "SKIP: xvfb-run missing (Debian package xvfb)"; exit 77; }
[ -x "$PY" ] && "$PY" -c 'import PIL' 2>/dev/null || { echo "SKIP: python3-pil missing"; exit 77; }

if [ -z "${ALIGNSEG_EDIT_IN_XVFB:-}" ]; then
    ALIGNSEG_EDIT_IN_XVFB=1 exec xvfb-run -a -s "-screen 0 1280x860x24" sh "$0" "$@"
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT INT TERM
export GSK_RENDERER=cairo GSETTINGS_BACKEND=memory GDK_BACKEND=x11 NO_AT_BRIDGE=1
export OPENBLAS_NUM_THREADS=1 XDG_RUNTIME_DIR="$TMP" HOME="$TMP"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
fail=0

MODEL="$DATA/reference/infer_tiny/alignseg.pth"
CAT=$(cd "$DATA/../../data/samples" && pwd)/chelsea.png

run() { # run NAME ACTION...: screenshot $TMP/NAME.png, labels $TMP/NAME.labels.png
    name=$1
    shift
    args=""
    for a in "$@"; do
        args="$args --action $a"
    done
    # shellcheck disable=SC2086
    timeout 240 "$VIEWER" --screenshot "$TMP/$name.png" --encoder-heads 3 --decoder-heads 3 \
        --size 64 -m "$MODEL" $args --action "edit.save-labels('$TMP/$name.labels.png')" \
        "$CAT" >"$TMP/$name.out" 2>"$TMP/$name.log"
    rc=$?
    if [ $rc != 0 ]; then
        echo "FAIL: run $name exited $rc"; cat "$TMP/$name.log"; fail=1
    fi
    if grep -E "(WARNING|CRITICAL) \*\*" "$TMP/$name.log" | grep -v "Unable to acquire session bus"; then
        echo "FAIL: GLib warnings in run $name"; fail=1
    fi
}

# --help documents the actions of this test
help=$(LANGUAGE= LC_ALL=C.UTF-8 "$VIEWER" --help-all 2>&1)
for want in "edit.tool('NAME')" "edit.paint((X,Y))" "edit.fill((X,Y))" "edit.undo" \
    "edit.save-labels('FILE')" "tiles.detail('MAP')" "tiles.shared-scale(true)"; do
    printf '%s\n' "$help" | grep -qF -- "$want" || { echo "FAIL: --help does not mention $want"; fail=1; }
done

# actions contain no spaces, so the list above splits on them
run base
run brush "edit.tool('brush')" "edit.class(0)" "edit.size(60.0)" "edit.paint((200.0,150.0))" \
    "edit.class(4)" "edit.size(41.0)" "edit.paint((100.0,250.0))"
run undo "edit.tool('brush')" "edit.class(0)" "edit.size(60.0)" "edit.paint((200.0,150.0))" \
    "edit.class(4)" "edit.size(41.0)" "edit.paint((100.0,250.0))" edit.undo
run redo "edit.tool('brush')" "edit.class(0)" "edit.size(60.0)" "edit.paint((200.0,150.0))" \
    "edit.class(4)" "edit.size(41.0)" "edit.paint((100.0,250.0))" edit.undo edit.redo
run forget "edit.tool('brush')" "edit.class(0)" "edit.size(60.0)" "edit.paint((200.0,150.0))" \
    "edit.class(4)" "edit.size(41.0)" "edit.paint((100.0,250.0))" edit.undo \
    "edit.paint((400.0,40.0))" edit.redo
run erase "edit.tool('brush')" "edit.class(0)" "edit.size(60.0)" "edit.paint((200.0,150.0))" \
    "edit.tool('eraser')" "edit.size(21.0)" "edit.paint((200.0,150.0))"
run region "edit.class(3)" "edit.fill((20.0,20.0))"
run keepbase "win.mass-kept(0.3)"
run keep "edit.class(0)" "edit.size(60.0)" "edit.paint((200.0,150.0))" "win.mass-kept(0.3)"
run away "edit.class(0)" "edit.size(60.0)" "edit.paint((200.0,150.0))" win.next win.previous
run base3 "win.prototype-count(3)"
run drop "edit.class(0)" "edit.size(60.0)" "edit.paint((200.0,150.0))" "win.prototype-count(3)"
run dropundo "edit.class(0)" "edit.size(60.0)" "edit.paint((200.0,150.0))" \
    "win.prototype-count(3)" edit.undo

# the Map page, the shared colour scale
run map "tiles.detail('attention:mean')"
grep -q '^state: page=views view=map ' "$TMP/map.out" ||
    { echo "FAIL: tiles.detail does not show the Map page:"; cat "$TMP/map.out"; fail=1; }
run mapproto "tiles.detail('cross-attention:4')"
grep -q '^state: page=views view=map ' "$TMP/mapproto.out" ||
    { echo "FAIL: tiles.detail('cross-attention:4'):"; cat "$TMP/mapproto.out"; fail=1; }
timeout 240 "$VIEWER" --screenshot "$TMP/nomap.png" --encoder-heads 3 --decoder-heads 3 --size 64 \
    -m "$MODEL" --action "tiles.detail('attention:99')" "$CAT" >"$TMP/nomap.out" 2>"$TMP/nomap.log"
rc=$?
if [ $rc != 2 ] || ! grep -q "attention:99" "$TMP/nomap.log"; then
    echo "FAIL: an unknown map: exit $rc, expected 2 and its name"; cat "$TMP/nomap.log"; fail=1
fi
run own "win.view('attention')"
run shared "win.view('attention')" "tiles.shared-scale(true)"
"$PY" - "$TMP/own.png" "$TMP/shared.png" <<'EOF2' || fail=1
import sys
from PIL import Image, ImageChops
a, b = (Image.open(p).convert("RGB") for p in sys.argv[1:3])
w, h = a.size
box = (0, 60, w - 320, 300)  # the first row of attention tiles
if ImageChops.difference(a.crop(box), b.crop(box)).getbbox() is None:
    sys.exit("FAIL: the shared colour scale does not change the attention tiles")
print("the shared colour scale recolours the tiles")
EOF2

grep -q 'notice="The grouping changed' "$TMP/drop.out" ||
    { echo "FAIL: no notice when the corrections are dropped:"; cat "$TMP/drop.out"; fail=1; }

"$PY" - "$TMP" <<'EOF' || fail=1
import math, sys
from PIL import Image, ImageChops
d = sys.argv[1]
def load(name):
    im = Image.open("%s/%s.labels.png" % (d, name))
    return im.size, list(im.getdata())
(w, h), base = load("base")
if (w, h) != (451, 300):
    sys.exit("FAIL: the label map is %dx%d, not the photo's 451x300" % (w, h))
def inside(x, y, cx, cy, diameter):
    r = diameter / 2.0
    return (x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2 <= r * r or \
        (x == math.floor(cx) and y == math.floor(cy))
def dab(m, cx, cy, diameter, label):
    return [label if inside(i % w, i // w, cx, cy, diameter) else m[i] for i in range(w * h)]
def erase(m, model, cx, cy, diameter):
    return [model[i] if inside(i % w, i // w, cx, cy, diameter) else m[i] for i in range(w * h)]
def fill(m, sx, sy, label):
    m = list(m)
    src = m[sy * w + sx]
    todo, seen = [(sx, sy)], {(sx, sy)}
    while todo:
        x, y = todo.pop()
        m[y * w + x] = label
        for nx, ny in ((x - 1, y), (x + 1, y), (x, y - 1), (x, y + 1)):
            if 0 <= nx < w and 0 <= ny < h and (nx, ny) not in seen and m[ny * w + nx] == src:
                seen.add((nx, ny))
                todo.append((nx, ny))
    return m
def expect(name, want, ref=None):
    ref = base if ref is None else ref
    got = load(name)[1]
    bad = [i for i in range(w * h) if got[i] != want[i]]
    if bad:
        i = bad[0]
        sys.exit("FAIL: %s: %d pixels differ, first (%d, %d): %d, expected %d"
                 % (name, len(bad), i % w, i // w, got[i], want[i]))
    print("%s: as expected (%d pixels differ from the model's)"
          % (name, sum(1 for i in range(w * h) if want[i] != ref[i])))
a = dab(base, 200, 150, 60, 0)
ab = dab(a, 100, 250, 41, 4)
if sum(1 for i in range(w * h) if a[i] != base[i]) < 1000:
    sys.exit("FAIL: the test dab hardly changes the map; choose another place")
expect("brush", ab)
expect("undo", a)
expect("redo", ab)
expect("forget", dab(a, 400, 40, 41, 4))  # redo after a new dab: nothing to redo
expect("erase", erase(a, base, 200, 150, 21))
if base[20 * w + 20] == 3:
    sys.exit("FAIL: the region test needs a pixel that is not class 3 already")
expect("region", fill(base, 20, 20, 3))
# a mass-slider move keeps the grouping: the dab stays over the new model labels
keepbase = load("keepbase")[1]
expect("keep", dab(keepbase, 200, 150, 60, 0), keepbase)
expect("away", a)  # the corrections wait while another photo is shown
base3 = load("base3")[1]
if base3 == base:
    sys.exit("FAIL: K=3 does not change the grouping; the drop test means nothing")
expect("drop", base3, base3)
# undoing the drop: the corrections come back, class 0 following prototype 0 (group 0 at K=3)
expect("dropundo", dab(base3, 200, 150, 60, 0), base3)
# the segmentation view shows the corrections
a_png = Image.open("%s/brush.png" % d).convert("RGB")
b_png = Image.open("%s/base.png" % d).convert("RGB")
box = (0, 60, a_png.size[0] - 320, a_png.size[1] - 60)
if ImageChops.difference(a_png.crop(box), b_png.crop(box)).getbbox() is None:
    sys.exit("FAIL: the window looks the same with and without corrections")
print("the segmentation view shows the corrections")
EOF

[ $fail = 0 ] && echo "viewer edit test passed"
exit $fail
