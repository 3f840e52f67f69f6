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
#   - a hostile checkpoint and an unreadable image give an error (exit 1), not a crash,
#   - the rough edges of issue 11 stay fixed (section 4): the foreground tile
#     follows the mass slider, an unreadable image clears the previous one, the
#     size drop-down leaves no GLib warning, Cancel then Segment Again, keep
#     aspect, the similarity overlay follows the opacity, the photo shows
#     without a model, head counts in the model line, a narrow window, the
#     export notice, the scripting actions (each one documented in --help),
#     translations and settings schema from the build tree (4.10), a run
#     touching every control with G_DEBUG=fatal-warnings (4.11), real keys
#     from xdotool on a focused slider and on the picture (4.12), the recent
#     models list across runs (4.13); and no run
#     writes a GLib WARNING or CRITICAL to stderr.
# Each run prints one "state:" line on stdout (window-testhooks.c) that the
# checks read.
# Usage: test_viewer_smoke.sh VIEWER_BINARY   (env: ALIGNSEG_TESTDATA, GSETTINGS_SCHEMA_DIR)
# Skips (exit 77) without xvfb-run or Debian's python3 with PIL.
set -u
VIEWER=${1:?usage: test_viewer_smoke.sh VIEWER}
DATA=${ALIGNSEG_TESTDATA:-$(dirname "$0")/data}
PY=/usr/bin/python3

command -v xvfb-run >/dev/null 2>&1 || { echo "SKIP: xvfb-run missing"; exit 77; }
[ -x "$PY" ] && "$PY" -c 'import PIL' 2>/dev/null || { echo "SKIP: python3-pil missing"; exit 77; }

# one X server for all runs (each xvfb-run costs seconds)
if [ -z "${ALIGNSEG_SMOKE_IN_XVFB:-}" ]; then
    ALIGNSEG_SMOKE_IN_XVFB=1 exec xvfb-run -a -s "-screen 0 1280x860x24" sh "$0" "$@"
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT INT TERM
export GSK_RENDERER=cairo GSETTINGS_BACKEND=memory GDK_BACKEND=x11 NO_AT_BRIDGE=1
export OPENBLAS_NUM_THREADS=1 XDG_RUNTIME_DIR="$TMP" HOME="$TMP"
# Under AddressSanitizer: GTK, fontconfig and GLib keep one-time allocations
# until exit, which LeakSanitizer would report; memory errors still abort.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
fail=0

run() { # run OUT.png EXTRA ARGS... ; prints the exit status; stdout in $TMP/out, stderr in $TMP/log
    out=$1
    shift
    timeout 240 "$VIEWER" --screenshot "$out" "$@" >"$TMP/out" 2>"$TMP/log"
    rc=$?
    # GLib/GTK warnings and criticals are bugs (the missing session bus of a bare Xvfb is not)
    if grep -E "(WARNING|CRITICAL) \*\*" "$TMP/log" | grep -v "Unable to acquire session bus" \
        >"$TMP/warn"; then
        echo "FAIL: GLib warnings with $*:" >&2
        cat "$TMP/warn" >&2
        echo 99
        return
    fi
    echo $rc
}
state() { # state KEY: the value of KEY in the last run's state line
    sed -n 's/^state: //p' "$TMP/out" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -1
}
state_has() { # state_has TEXT: the state line contains TEXT
    grep "^state: " "$TMP/out" | grep -qF -- "$1"
}

MODEL="$DATA/reference/infer_tiny/alignseg.pth"
IMAGE="$DATA/reference/infer_tiny/input.png"

# 1. a real result
# (opacity 1: the overlay shows the palette colours themselves; the legend may be scrolled away)
rc=$(run "$TMP/ok.png" --encoder-heads 3 --decoder-heads 3 --size 64 -m "$MODEL" \
    --action "win.opacity(1.0)" --export "$TMP/exp" "$IMAGE")
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

# 4. issue 11's rough edges, each through a scripted run
SAMPLE_DIR=$(cd "$DATA/../../data/samples" && pwd)
CAT="$SAMPLE_DIR/chelsea.png"
T="--encoder-heads 3 --decoder-heads 3 -m $MODEL"

# 4.1 the foreground tile follows the mass slider while the attention view shows:
#     moving it there gives the same window as moving it before showing the view
rc=$(run "$TMP/mass_live.png" $T --size 64 --view attention --action "win.mass-kept(0.23)" "$CAT")
rc2=$(run "$TMP/mass_first.png" $T --size 64 --action "win.mass-kept(0.23)" --action "win.view('attention')" "$CAT")
if [ "$rc" != 0 ] || [ "$rc2" != 0 ]; then
    echo "FAIL: mass slider runs exited $rc / $rc2"; fail=1
elif ! state_has 'mass-label="Attention mass kept 0.23: the '; then
    echo "FAIL: the attention view does not say what the mass keeps:"; cat "$TMP/out"; fail=1
else
    tile=$(state fg-tile)
    rc3=$(run "$TMP/mass_default.png" $T --size 64 --view attention "$CAT")
    # the tile itself (where the window says it is) differs between 0.60 and 0.23
    "$PY" - "$TMP/mass_default.png" "$TMP/mass_live.png" "$tile" "$rc3" <<'EOF' || fail=1
import sys
from PIL import Image, ImageChops
a, b = (Image.open(p).convert("RGB") for p in sys.argv[1:3])
x, y, w, h = (int(v) for v in (sys.argv[3] or "0,0,0,0").split(","))
if sys.argv[4] != "0" or w < 20 or h < 20:
    sys.exit("FAIL: no foreground tile in the attention view (exit %s, tile %s)" % (sys.argv[4], sys.argv[3]))
box = (x, y, x + w, y + h)
d = ImageChops.difference(a.crop(box), b.crop(box)).getbbox()
if d is None:
    sys.exit("FAIL: the foreground tile %s is pixel-identical at mass 0.60 and 0.23" % (box,))
print("foreground tile %s changes with the mass slider (in %s)" % (box, d))
EOF
    "$PY" - "$TMP/mass_live.png" "$TMP/mass_first.png" <<'EOF' || fail=1
import sys
from PIL import Image, ImageChops
a, b = (Image.open(p).convert("RGB") for p in sys.argv[1:3])
if a.size != b.size:
    sys.exit("FAIL: window sizes differ %s %s" % (a.size, b.size))
w, h = a.size
box = (0, 0, w, h - 40)  # the status bar holds timings
d = ImageChops.difference(a.crop(box), b.crop(box)).getbbox()
if d:
    sys.exit("FAIL: the attention view differs after moving the mass slider live, in %s" % (d,))
print("foreground tile follows the mass slider")
EOF
fi

# 4.2 an unreadable image after a good one: nothing of the good one stays
mkdir -p "$TMP/trunc"
cp "$CAT" "$TMP/trunc/a_good.png"
head -c 2000 "$CAT" >"$TMP/trunc/b_truncated.png"
rc=$(run "$TMP/trunc1.png" $T --size 64 --action win.next "$TMP/trunc/a_good.png")
if [ "$rc" != 1 ]; then
    echo "FAIL: truncated image: exit $rc, expected 1"; cat "$TMP/log"; fail=1
elif [ -n "$(state image)" ] || [ "$(state export)" != disabled ] || [ "$(state input)" != 0x0 ] ||
     state_has 'status="a_good'; then
    echo "FAIL: after an unreadable image:"; cat "$TMP/out"; fail=1
elif state_has 'error=""' || ! state_has 'b_truncated.png — 2 of 2 — could not be read'; then
    echo "FAIL: the unreadable image is not named:"; cat "$TMP/out"; fail=1
fi
rc=$(run "$TMP/trunc2.png" $T --size 64 --action win.next --action win.next "$TMP/trunc/a_good.png")
if [ "$rc" = 99 ] || [ "$(state image)" != a_good.png ] || ! state_has 'error=""'; then
    echo "FAIL: the error banner stays after a good image:"; cat "$TMP/out"; fail=1
fi

# 4.2b a model that fails to load, then one that loads: the banner clears
rc=$(run "$TMP/modelok.png" -m "$TMP/truncated.pth" --size 64 --action win.random-model "$CAT")
if [ "$rc" = 99 ] || [ "$(state input)" != 64x64 ] || ! state_has 'error=""'; then
    echo "FAIL: the error banner stays after a model loaded (exit $rc):"; cat "$TMP/out"; fail=1
fi

# 4.3 choosing an input size in the drop-down: re-segmented, no GLib warning (run checks)
rc=$(run "$TMP/size224.png" $T --size 64 --action "win.input-size(224)" "$CAT")
if [ "$rc" != 0 ] || [ "$(state input)" != 224x224 ]; then
    echo "FAIL: input size 224: exit $rc"; cat "$TMP/out"; fail=1
fi

# 4.4 Cancel, then Segment Again. Cancelling a re-run of the photo shown (a new
#     input size) leaves its previous result in the views (the attention view
#     is not blank); cancelling a new photo leaves nothing of the previous one
#     (no stale attention sentence) and offers Segment Again.
rc=$(run "$TMP/cancel.png" $T --size 64 --threads 1 --view attention --action "win.input-size(896)" \
    --action win.cancel "$CAT")
tile=$(state fg-tile)
if [ "$rc" != 0 ] || [ "$(state input)" != 64x64 ] || ! state_has 'notice="Cancelled: the views show the previous result (input 64×64)' ||
   [ "${tile#*,*,}" = "0,0" ] || [ -z "$tile" ]; then
    echo "FAIL: after cancelling a re-run at 896 px (exit $rc):"; cat "$TMP/out"; fail=1
fi
rc=$(run "$TMP/cancel2.png" $T --size 896 --threads 1 --view attention --action win.next \
    --action win.cancel "$CAT")
# (coffee.png may or may not have been read when the cancel comes: either way
# nothing of chelsea.png stays)
if [ "$rc" != 0 ] || [ "$(state input)" != 0x0 ] || [ "$(state image)" = chelsea.png ] ||
   state_has 'status="chelsea' || ! state_has 'status="coffee.png' ||
   ! state_has "cancelled" || state_has 'notice=""' || ! state_has 'mass-label=""'; then
    echo "FAIL: after cancelling the next image (exit $rc):"; cat "$TMP/out"; fail=1
fi
rc=$(run "$TMP/rerun.png" $T --size 64 --threads 1 --action "win.input-size(896)" --action win.cancel \
    --action win.rerun "$CAT")
if [ "$rc" != 0 ] || [ "$(state input)" != 896x896 ]; then
    echo "FAIL: Segment Again after Cancel (exit $rc):"; cat "$TMP/out"; fail=1
fi

# 4.5 keep aspect: chelsea (451x300) at input 448 keeps its shape
rc=$(run "$TMP/aspect.png" $T --size 448 --action "win.keep-aspect(true)" "$CAT")
if [ "$rc" != 0 ] || [ "$(state input)" != 448x304 ]; then
    echo "FAIL: keep aspect: exit $rc, input $(state input), expected 448x304"; fail=1
fi

# 4.6 the similarity overlay follows the opacity slider
run "$TMP/sim0.png" $T --size 64 --view similarity --action "win.opacity(0)" "$CAT" >/dev/null
run "$TMP/sim1.png" $T --size 64 --view similarity --action "win.opacity(1)" "$CAT" >/dev/null
"$PY" - "$TMP/sim0.png" "$TMP/sim1.png" <<'EOF' || fail=1
import sys
from PIL import Image, ImageChops
a, b = (Image.open(p).convert("RGB") for p in sys.argv[1:3])
w, h = a.size
box = (0, 60, w - 320, h - 120)  # the picture (not the side panel, status or scale)
if ImageChops.difference(a.crop(box), b.crop(box)).getbbox() is None:
    sys.exit("FAIL: the similarity view looks the same at opacity 0 and 1")
print("similarity overlay follows the opacity")
EOF

# 4.7 no model: the photo shows (with the offer to open one); head counts in the model line
rc=$(run "$TMP/nomodel.png" "$CAT")
if [ "$rc" != 0 ] || [ "$(state page)" != views ] || [ "$(state image)" != chelsea.png ] ||
   [ "$(state nomodel)" != 1 ]; then
    echo "FAIL: without a model (exit $rc):"; cat "$TMP/out"; fail=1
fi
rc=$(run "$TMP/heads.png" $T --size 64 "$CAT")
if ! state_has "width 48, 3 heads; decoder 5 prototypes, 3 heads"; then
    echo "FAIL: head counts not in the model line:"; cat "$TMP/out"; fail=1
fi

# 4.8 the window fits half of a 1920 px screen (900 px or less, window decorations included)
mw=$(state min-width)
if [ -z "$mw" ] || [ "$mw" -gt 900 ]; then
    echo "FAIL: the window cannot be narrower than $mw px"; fail=1
fi

# 4.9 scripting: every slider and export by action; the export is announced
rc=$(run "$TMP/script.png" $T --size 64 --action "win.prototype-count(3)" \
    --action "win.merge-threshold(0.5)" --action "win.mass-kept(0.4)" --action "win.opacity(0.8)" \
    --action "win.export-folder('$TMP/scripted')" "$CAT")
if [ "$rc" != 0 ] || [ "$(state k)" != 3 ] || [ "$(state merge)" != 0.5 ] ||
   [ "$(state mass)" != 0.4 ] || [ "$(state opacity)" != 0.8 ] ||
   [ ! -f "$TMP/scripted/coco/annotations.json" ] || ! state_has 'notice="Exported chelsea.png'; then
    echo "FAIL: scripted sliders and export (exit $rc):"; cat "$TMP/out" "$TMP/log"; fail=1
fi
"$PY" - "$TMP/scripted" "$TMP/out" <<'EOF' || fail=1
import json, os, re, sys
d, out = sys.argv[1], open(sys.argv[2]).read()
legend = re.search(r'legend="([^"]*)"', out).group(1).split(";")
shown = [n.split(" ")[0] for n in legend if n.startswith("prototype_")]
coco = json.load(open(os.path.join(d, "coco", "annotations.json")))
cats = [c["name"] for c in coco["categories"]]
masks = sorted(os.path.splitext(m)[0] for m in os.listdir(os.path.join(d, "masks", "chelsea")))
if cats != shown or masks != sorted(shown):
    sys.exit("FAIL: legend %s, COCO categories %s, masks %s" % (legend, cats, masks))
print("export names match the legend: %s" % shown)
EOF
# every action the window has (the "actions:" line) is documented in --help
help=$(LANGUAGE= LC_ALL=C.UTF-8 "$VIEWER" --help-all 2>&1)
for a in $(sed -n 's/^actions: //p' "$TMP/out"); do
    printf '%s\n' "$help" | grep -qF -- "$a" || { echo "FAIL: --help does not document $a"; fail=1; }
done
[ -n "$(sed -n 's/^actions: //p' "$TMP/out")" ] || { echo "FAIL: no actions line"; fail=1; }
rc=$(run "$TMP/badaction.png" $T --size 64 --action "win.no-such-action" "$CAT")
if [ "$rc" != 2 ] || ! grep -q "no-such-action" "$TMP/log"; then
    echo "FAIL: an unknown action: exit $rc, expected 2"; cat "$TMP/log"; fail=1
fi

# 4.11 a run that touches every control, with GLib warnings and criticals fatal
#      (G_DEBUG=fatal-warnings: any of them aborts the viewer), e.g. bug 5's
#      "invalid uninstantiatable type" of the input-size drop-down. A session
#      bus (dbus-run-session) keeps GApplication from warning that it has none.
if ! command -v dbus-run-session >/dev/null 2>&1; then
    echo "SKIP 4.11: dbus-run-session missing (Debian package dbus-daemon)"
else
    rc=$(GTK_A11Y=none G_DEBUG=fatal-warnings dbus-run-session -- sh -c '"$@"' run_in_bus \
        timeout 240 "$VIEWER" --screenshot "$TMP/touch.png" $T --size 64 \
        --action 'win.group-visible((1,false))' --action 'win.group-visible((1,true))' \
        --action 'win.prototype-count(3)' --action 'win.merge-threshold(0.5)' \
        --action 'win.mass-kept(0.3)' --action 'win.opacity(0.8)' \
        --action 'win.show-contours(false)' --action 'win.restrict-foreground(true)' \
        --action 'win.smooth-heatmaps(true)' --action "win.view('prototypes')" \
        --action 'win.cross-attention-head(1)' --action "win.view('attention')" \
        --action "win.view('similarity')" --action win.zoom-in --action win.zoom-out \
        --action win.zoom-one --action win.zoom-fit --action "win.view('segmentation')" \
        --action 'win.keep-aspect(true)' --action 'win.input-size(224)' \
        --action 'win.input-size(96)' --action win.next --action win.previous \
        --action "win.export-folder('$TMP/touched')" --action win.open-model "$CAT" \
        >"$TMP/out" 2>"$TMP/log"; echo $?)
    if [ "$rc" != 0 ] || [ "$(state input)" != 96x64 ] || [ "$(state k)" != 3 ] ||
       [ ! -f "$TMP/touched/coco/annotations.json" ]; then
        echo "FAIL: touching every control with G_DEBUG=fatal-warnings: exit $rc"
        cat "$TMP/out" "$TMP/log"; fail=1
    fi
fi

# 4.12 real keys (xdotool through the X server): with the mass slider focused
#      by a click, Right moves the slider and the image stays; with the picture
#      clicked, Right goes to the next image of the folder. --hold prints where
#      the controls are ("ready:") and waits for its file before the screenshot.
held() { # held WIDGET KEY... : click WIDGET's centre, press the keys; state in $TMP/out
    widget=$1
    shift
    rm -f "$TMP/hold"
    timeout 240 "$VIEWER" --screenshot "$TMP/held.png" --hold "$TMP/hold" $T --size 64 "$CAT" \
        >"$TMP/out" 2>"$TMP/log" &
    pid=$!
    i=0
    while ! grep -q "^ready:" "$TMP/out" && [ $i -lt 600 ] && kill -0 $pid 2>/dev/null; do
        sleep 0.2
        i=$((i + 1))
    done
    b=$(sed -n "s/^ready:.* $widget=\([0-9,-]*\).*/\1/p" "$TMP/out")
    x=$(echo "$b" | awk -F, '{print int($1 + $3 / 2)}')
    y=$(echo "$b" | awk -F, '{print int($2 + $4 / 2)}')
    # the window may be mapped a moment after the ready line (a loaded machine)
    win=
    i=0
    while [ -z "$win" ] && [ $i -lt 50 ] && kill -0 $pid 2>/dev/null; do
        win=$(xdotool search --onlyvisible --class alignseg-viewer 2>/dev/null | head -1)
        [ -n "$win" ] || sleep 0.2
        i=$((i + 1))
    done
    if [ -n "$b" ] && [ -n "$win" ]; then
        xdotool windowfocus --sync "$win" mousemove --window "$win" "$x" "$y" click 1
        [ $# -gt 0 ] && xdotool key "$@"
    else
        echo "FAIL: no ready line or window for $widget"; cat "$TMP/out"
    fi
    sleep 1 # the keys reach the viewer before it looks for the file again
    touch "$TMP/hold"
    wait $pid
}
if ! command -v xdotool >/dev/null 2>&1; then
    echo "SKIP 4.12: xdotool missing (Debian package xdotool)"
else
    held mass-scale
    m0=$(state mass)
    held mass-scale Right Right Right
    m3=$(state mass)
    if [ "$(state image)" != chelsea.png ] || ! state_has "2 of 4" || [ -z "$m0" ] ||
       [ "$("$PY" -c "print(abs($m3 - $m0 - 0.03) < 1e-9)")" != True ]; then
        echo "FAIL: a focused slider did not take Right (mass $m0 -> $m3):"; cat "$TMP/out"; fail=1
    fi
    held seg-area Right
    if [ "$(state image)" != coffee.png ] || ! state_has "3 of 4"; then
        echo "FAIL: Right over the picture does not go to the next image:"; cat "$TMP/out"; fail=1
    fi
fi

# 4.13 recent models (the Model… dialog's list), kept in a keyfile between runs:
#      newest first, no duplicates, a checkpoint that failed to load not listed
if ! command -v gsettings >/dev/null 2>&1; then
    echo "SKIP 4.13: gsettings missing (Debian package libglib2.0-bin)"
else
    cp "$MODEL" "$TMP/model_a.pth"
    cp "$MODEL" "$TMP/model_b.pth"
    for m in model_a.pth truncated.pth model_b.pth model_a.pth; do
        rc=$(GSETTINGS_BACKEND=keyfile XDG_CONFIG_HOME="$TMP/cfg" \
            run "$TMP/recent.png" --encoder-heads 3 --decoder-heads 3 -m "$TMP/$m" --size 64 "$CAT")
        [ "$rc" = 99 ] && fail=1
    done
    recent=$(GSETTINGS_BACKEND=keyfile XDG_CONFIG_HOME="$TMP/cfg" gsettings get io.github.alignseg.Viewer recent-models)
    if [ "$recent" != "['$TMP/model_a.pth', '$TMP/model_b.pth']" ]; then
        echo "FAIL: recent models after loading a, a broken one, b, a: $recent"; fail=1
    fi
fi

# 4.10 run from the build tree (as the README does) the window is translated and
#      takes the build tree's settings schema, even over an installed one of an
#      older version; a copy elsewhere (an installed binary) takes the installed
#      schema only, never the build tree's. GSETTINGS_SCHEMA_DIR is unset here,
#      XDG_DATA_DIRS points at a fake installed schema whose opacity default is 0.15.
mkdir -p "$TMP/xdg/glib-2.0/schemas" "$TMP/noxdg" "$TMP/inst"
for d in "$TMP/xdg" "$TMP/noxdg"; do # the MIME database, to recognise the SVG icon
    [ -d /usr/share/mime ] && ln -s /usr/share/mime "$d/mime"
done
SCHEMA_SRC="$DATA/../../data/io.github.alignseg.Viewer.gschema.xml"
if ! command -v glib-compile-schemas >/dev/null 2>&1; then
    echo "SKIP 4.10: glib-compile-schemas missing (Debian package libglib2.0-bin)"
else
    "$PY" - "$SCHEMA_SRC" "$TMP/xdg/glib-2.0/schemas/io.github.alignseg.Viewer.gschema.xml" <<'EOF'
import re, sys
s = open(sys.argv[1]).read()
s, n = re.subn(r'(<key name="opacity" type="d">.*?<default>)[^<]*(</default>)', r'\g<1>0.15\2', s, flags=re.S)
assert n == 1, "no opacity key in the schema"
open(sys.argv[2], "w").write(s)
EOF
    glib-compile-schemas "$TMP/xdg/glib-2.0/schemas"
    cp "$VIEWER" "$TMP/inst/alignseg-viewer"
    rc=$(unset GSETTINGS_SCHEMA_DIR; LANGUAGE=zh_CN LC_ALL=C.UTF-8 XDG_DATA_DIRS="$TMP/xdg" \
        run "$TMP/zh.png" $T --size 64 "$CAT")
    if [ "$rc" != 0 ] || [ "$(state settings)" != 1 ] || [ "$(state opacity)" != 0.6 ]; then
        echo "FAIL: from the build tree: exit $rc, settings $(state settings), opacity $(state opacity) (the build schema says 0.6)"
        cat "$TMP/out"; fail=1
    elif ! state_has '输入 64×64' || ! state_has '模型：'; then
        echo "FAIL: run from the build tree with LANGUAGE=zh_CN, the window is not translated:"
        cat "$TMP/out"; fail=1
    fi
    VIEWER_BUILD=$VIEWER
    VIEWER="$TMP/inst/alignseg-viewer"
    rc=$(unset GSETTINGS_SCHEMA_DIR; XDG_DATA_DIRS="$TMP/xdg" run "$TMP/inst1.png" $T --size 64 "$CAT")
    if [ "$rc" != 0 ] || [ "$(state settings)" != 1 ] || [ "$(state opacity)" != 0.15 ]; then
        echo "FAIL: an installed copy does not take the installed schema (exit $rc, opacity $(state opacity))"
        cat "$TMP/out"; fail=1
    fi
    rc=$(unset GSETTINGS_SCHEMA_DIR; XDG_DATA_DIRS="$TMP/noxdg" run "$TMP/inst2.png" $T --size 64 "$CAT")
    if [ "$rc" != 0 ] || [ "$(state settings)" != 0 ]; then
        echo "FAIL: an installed copy without an installed schema took one from the build tree (exit $rc)"
        cat "$TMP/out"; fail=1
    fi
    VIEWER=$VIEWER_BUILD
fi

[ $fail = 0 ] && echo "viewer smoke test passed"
exit $fail
