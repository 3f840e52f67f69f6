#!/bin/sh
# test_viewer_smoke: start alignseg-viewer under Xvfb on a sample image with
# the small reference model, let it segment, render the window to a PNG
# (hidden --screenshot option) and check that
#   - the process exits 0 after a real result,
#   - the PNG holds the legend's prototype colours (VOC palette entries 1..Q,
#     computed here by its bit rule, independently of our code),
#   - the export (as Ctrl+E, hidden --export DIR) wrote all four formats at the
#     image's size,
#   - the input-size action re-segments at the new size (recorded in the
#     export's alignseg-export.json), and a random model's export is marked
#     untrained (provenance, labelme flags, COCO info),
#   - a hostile checkpoint and an unreadable image give an error (exit 1), not a crash.
# Usage: test_viewer_smoke.sh VIEWER_BINARY   (env: ALIGNSEG_TESTDATA, GSETTINGS_SCHEMA_DIR)
# Skips (exit 77) without xvfb-run or Debian's python3 with PIL.
set -u
VIEWER=${1:?usage: test_viewer_smoke.sh VIEWER}
DATA=${ALIGNSEG_TESTDATA:-$(dirname "$0")/data}
PY=/usr/bin/python3

command -v xvfb-run >/dev/null 2>&1 || { echo "SKIP: xvfb-run missing"; exit 77; }
[ -x "$PY" ] && "$PY" -c 'import PIL' 2>/dev/null || { echo "SKIP: python3-pil missing"; exit 77; }

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT INT TERM
export GSK_RENDERER=cairo GSETTINGS_BACKEND=memory GDK_BACKEND=x11 NO_AT_BRIDGE=1
export OPENBLAS_NUM_THREADS=1 XDG_RUNTIME_DIR="$TMP" HOME="$TMP"
# Under AddressSanitizer: GTK, fontconfig and GLib keep one-time allocations
# until exit, which LeakSanitizer would report; memory errors still abort.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
fail=0

run() { # run OUT.png EXTRA ARGS... ; prints the exit status
    out=$1
    shift
    timeout 240 xvfb-run -a -s "-screen 0 1280x860x24" "$VIEWER" --screenshot "$out" "$@" \
        >"$TMP/log" 2>&1
    echo $?
}

MODEL="$DATA/reference/infer_tiny/alignseg.pth"
IMAGE="$DATA/reference/infer_tiny/input.png"

# 1. a real result
rc=$(run "$TMP/ok.png" --encoder-heads 3 --decoder-heads 3 --size 64 -m "$MODEL" \
    --export "$TMP/exp" "$IMAGE")
if [ "$rc" != 0 ]; then
    echo "FAIL: viewer exited $rc on a good model and image"; cat "$TMP/log"; fail=1
elif [ ! -s "$TMP/ok.png" ]; then
    echo "FAIL: no screenshot written"; fail=1
else
    "$PY" - "$TMP/ok.png" 5 <<'EOF' || fail=1
import sys
from PIL import Image
path, q = sys.argv[1], int(sys.argv[2])
def voc(i):
    r = g = b = 0
    for j in range(8):
        r |= ((i >> 0) & 1) << (7 - j)
        g |= ((i >> 1) & 1) << (7 - j)
        b |= ((i >> 2) & 1) << (7 - j)
        i >>= 3
    return (r, g, b)
im = Image.open(path).convert("RGB")
w, h = im.size
counts = {}
for c in im.getdata():
    counts[c] = counts.get(c, 0) + 1
want = [voc(k + 1) for k in range(q)]
found = [c for c in want if counts.get(c, 0) >= 50]
print("screenshot %dx%d; legend colours found: %s" % (w, h, found))
if w < 400 or h < 300:
    sys.exit("FAIL: screenshot too small")
if len(found) < q:
    sys.exit("FAIL: only %d of %d prototype colours in the window" % (len(found), q))
EOF
    "$PY" - "$TMP/exp" "$IMAGE" <<'EOF' || fail=1
import json, os, sys
from PIL import Image
d, img = sys.argv[1], sys.argv[2]
w, h = Image.open(img).size
voc = os.path.join(d, "voc", "SegmentationClass", "input.png")
for p in (voc, os.path.join(d, "coco", "annotations.json"), os.path.join(d, "labelme", "input.json")):
    if not os.path.isfile(p):
        sys.exit("FAIL: export missing " + p)
im = Image.open(voc)
if im.mode != "P" or im.size != (w, h):
    sys.exit("FAIL: VOC export is %s %s, expected P %s" % (im.mode, im.size, (w, h)))
idx = set(im.getdata())
if not idx or max(idx) > 5:
    sys.exit("FAIL: VOC indices %s outside 0..5" % sorted(idx))
masks = os.listdir(os.path.join(d, "masks", "input"))
if not masks:
    sys.exit("FAIL: no binary masks exported")
coco = json.load(open(os.path.join(d, "coco", "annotations.json")))
if not coco.get("annotations") or not coco.get("categories"):
    sys.exit("FAIL: COCO export has no annotations")
print("export: VOC indices %s, %d masks, %d COCO annotations" % (sorted(idx), len(masks), len(coco["annotations"])))
EOF
fi

# 1b. the input-size action (the side panel's drop-down) re-segments before
#     the export, which records the new size; the model is trained, so the
#     export is not marked untrained (and on 2 threads: --threads)
rc=$(run "$TMP/size.png" --encoder-heads 3 --decoder-heads 3 --size 64 -m "$MODEL" --threads 2 \
    --action "win.input-size(96)" --export "$TMP/exp96" "$IMAGE")
if [ "$rc" != 0 ]; then
    echo "FAIL: viewer exited $rc with win.input-size(96)"; cat "$TMP/log"; fail=1
else
    "$PY" - "$TMP/exp96" 96 <<'EOF' || fail=1
import json, os, sys
d, size = sys.argv[1], int(sys.argv[2])
p = json.load(open(os.path.join(d, "alignseg-export.json")))
if not p["generator"].startswith("alignseg-viewer"):
    sys.exit("FAIL: generator %r" % p["generator"])
if p["images"][0]["input_size"] != [size, size]:
    sys.exit("FAIL: exported at input %s, expected %d" % (p["images"][0]["input_size"], size))
if p["untrained"] is not False or "warning" in p:
    sys.exit("FAIL: a trained model's export is marked untrained: %s" % p)
flags = json.load(open(os.path.join(d, "labelme", "input.json")))["flags"]
if "alignseg_untrained_model" in flags:
    sys.exit("FAIL: labelme flags %s" % flags)
print("export provenance: input %s, untrained %s" % (p["images"][0]["input_size"], p["untrained"]))
EOF
fi

# 1c. a random (untrained) model: its export says so
rc=$(run "$TMP/untrained.png" --untrained --size 64 --export "$TMP/expu" "$IMAGE")
if [ "$rc" != 0 ]; then
    echo "FAIL: viewer exited $rc with --untrained"; cat "$TMP/log"; fail=1
else
    "$PY" - "$TMP/expu" <<'EOF' || fail=1
import json, os, sys
d = sys.argv[1]
p = json.load(open(os.path.join(d, "alignseg-export.json")))
if p["untrained"] is not True or "warning" not in p:
    sys.exit("FAIL: untrained export not marked: %s" % p)
flags = json.load(open(os.path.join(d, "labelme", "input.json")))["flags"]
if flags.get("alignseg_untrained_model") is not True:
    sys.exit("FAIL: labelme flags %s" % flags)
coco = json.load(open(os.path.join(d, "coco", "annotations.json")))
if coco["info"].get("alignseg_untrained") is not True:
    sys.exit("FAIL: COCO info %s" % coco["info"])
print("untrained export marked in provenance, labelme and COCO")
EOF
fi

# 2. a hostile checkpoint: an error in the window, exit 1, no crash
head -c 3000 "$MODEL" >"$TMP/truncated.pth"
rc=$(run "$TMP/bad.png" -m "$TMP/truncated.pth" "$IMAGE")
if [ "$rc" != 1 ]; then
    echo "FAIL: truncated checkpoint: exit $rc, expected 1"; cat "$TMP/log"; fail=1
else
    grep -q "truncated.pth" "$TMP/log" || { echo "FAIL: error does not name the file"; cat "$TMP/log"; fail=1; }
fi

# 3. an unreadable image
printf 'not a picture' >"$TMP/broken.png"
rc=$(run "$TMP/bad2.png" --encoder-heads 3 -m "$MODEL" "$TMP/broken.png")
if [ "$rc" != 1 ]; then
    echo "FAIL: broken image: exit $rc, expected 1"; cat "$TMP/log"; fail=1
fi

[ $fail = 0 ] && echo "viewer smoke test passed"
exit $fail
