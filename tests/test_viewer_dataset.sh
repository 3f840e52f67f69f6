#!/bin/sh
# test_viewer_dataset: issue 11's "done when" for the dataset export, driven
# through the viewer's scripting actions under Xvfb (window-export.c).
# A folder of 4 photos is exported in two sittings into one dataset folder:
#   sitting 1: name group 0 "cat" and group 1 "sky", hide group 2 and export
#     hidden groups as "ignore"; export astronaut, then chelsea;
#   sitting 2 (a new process): the same names, K=3 (other labels), re-export
#     chelsea with a correction (a brush stroke of group 0, "cat", 60 px wide
#     at (200, 150); replacing it, asked for with win.export-replace), then
#     coffee and rocket;
#   sitting 3: export chelsea again without allowing replacement: the warning
#     is shown and the folder stays byte-identical;
#   sitting 4: export the whole folder and cancel it: the folder stays
#     byte-identical (no staged file, no empty folder);
#   sitting 5: export the whole folder into a new folder: the images the task
#     segments itself equal those exported from the window in sitting 2.
# Then, with decoders written here (COCO compressed RLE, VOC palette PNGs)
# and labelme's own loader (labelme.LabelFile, Debian package labelme 5.1.1):
#   - every format lists the same 4 images; image ids are stable (chelsea keeps
#     the id of sitting 1), annotation id = image id * 1000 + class id;
#   - the same named classes everywhere: COCO categories = VOC labelmap =
#     labelme labels = the classes the index lists for its images, with one id
#     and one colour per name (VOC palette = labelmap = index);
#   - masks agree: COCO = VOC = masks/ exactly, labelme polygons >= 0.98 of
#     the pixels; the re-exported chelsea has its new labels (with the brush
#     stroke) and no stale mask.
# Usage: test_viewer_dataset.sh VIEWER_BINARY (env: ALIGNSEG_TESTDATA, GSETTINGS_SCHEMA_DIR)
# Skips (exit 77) without xvfb-run, python3 with numpy and PIL, or labelme.
set -u
VIEWER=${1:?usage: test_viewer_dataset.sh VIEWER}
DATA=${ALIGNSEG_TESTDATA:-$(dirname "$0")/data}
SAMPLES=$(cd "$DATA/../../data/samples" && pwd)
PY=/usr/bin/python3

command -v xvfb-run >/dev/null 2>&1 || { echo "SKIP: xvfb-run missing (Debian package xvfb)"; exit 77; }
"$PY" -c 'import numpy, PIL' 2>/dev/null ||
    { echo "SKIP: python3-numpy or python3-pil missing"; exit 77; }
"$PY" -c 'import labelme' 2>/dev/null ||
    { echo "SKIP: labelme missing (Debian package labelme; .ci/labelme.sh installs it)"; exit 77; }

if [ -z "${ALIGNSEG_DATASET_IN_XVFB:-}" ]; then
    ALIGNSEG_DATASET_IN_XVFB=1 exec xvfb-run -a -s "-screen 0 1280x860x24" sh "$0" "$@"
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT INT TERM
export GSK_RENDERER=cairo GSETTINGS_BACKEND=memory GDK_BACKEND=x11 NO_AT_BRIDGE=1
export OPENBLAS_NUM_THREADS=1 XDG_RUNTIME_DIR="$TMP" HOME="$TMP" QT_QPA_PLATFORM=offscreen
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
MODEL="$DATA/reference/infer_tiny/alignseg.pth"
DS="$TMP/dataset"
mkdir "$TMP/photos"
for f in astronaut.png chelsea.png coffee.png rocket.jpg; do
    cp "$SAMPLES/$f" "$TMP/photos/" || { echo "FAIL: sample $f missing"; exit 1; }
done

sitting() { # sitting NAME ACTIONS...: one viewer run on the folder
    name=$1
    shift
    timeout 240 "$VIEWER" --screenshot "$TMP/$name.png" --encoder-heads 3 --decoder-heads 3 \
        --size 96 -m "$MODEL" "$@" "$TMP/photos" >"$TMP/$name.out" 2>"$TMP/$name.log"
    rc=$?
    if [ $rc != 0 ]; then
        echo "FAIL: sitting $name exited $rc"; cat "$TMP/$name.log"; exit 1
    fi
    if grep -E "(WARNING|CRITICAL) \*\*" "$TMP/$name.log" | grep -v "Unable to acquire session bus"; then
        echo "FAIL: GLib warnings in sitting $name"; exit 1
    fi
    sed -n 's/^state: .*\(notice="[^"]*"\).*\(legend="[^"]*"\).*/'"$name"': \1 \2/p' "$TMP/$name.out" | tail -1
}

NAMES="--action win.group-class((0,'cat')) --action win.group-class((1,'sky'))"
# shellcheck disable=SC2086
sitting one $NAMES --action "win.group-visible((2,false))" --action "win.export-hidden(true)" \
    --action "win.export-folder('$DS')" --action win.next \
    --action "win.group-visible((2,false))" --action "win.export-folder('$DS')"
cp -r "$DS" "$TMP/after-one"
# shellcheck disable=SC2086
sitting two $NAMES --action "win.export-replace(true)" --action "win.prototype-count(3)" \
    --action win.next --action "edit.tool('brush')" --action "edit.class(0)" \
    --action "edit.size(60.0)" --action "edit.paint((200.0,150.0))" \
    --action "win.export-folder('$DS')" --action win.next \
    --action "win.export-folder('$DS')" --action win.next --action "win.export-folder('$DS')"
cp -r "$DS" "$TMP/after-two"
# shellcheck disable=SC2086
sitting three $NAMES --action win.next --action "win.export-folder('$DS')"
if ! diff -r "$TMP/after-two" "$DS" >/dev/null; then
    echo "FAIL: an export replaced an image without the user's consent"; exit 1
fi
# sitting four: export the whole folder at 896 px (seconds on the worker) and
# cancel it at the next frame: nothing of it may reach the folder. The cancel
# reaches the export either running ("Export cancelled: ...") or still queued
# behind the 896 px segmentation (then the window's own "Cancelled: ..."
# notice); a later re-run would hide either, so the run ends here.
sitting four --action "win.input-size(896)" --action "win.export-replace(true)" \
    --action "win.export-all('$DS')" --action win.cancel
if ! grep -qE 'notice="(Export cancelled|Cancelled)' "$TMP/four.out"; then
    echo "FAIL: the export was not cancelled:"; cat "$TMP/four.out"; exit 1
fi
if ! diff -r "$TMP/after-two" "$DS"; then
    echo "FAIL: a cancelled export changed the dataset"; exit 1
fi

# sitting five: the whole folder at once into a new folder with sitting two's
# settings: the images the export task segments itself (all but the one
# shown) must equal the ones sitting two exported from the window
DS2="$TMP/dataset2"
# shellcheck disable=SC2086
sitting five $NAMES --action "win.prototype-count(3)" --action "win.export-all('$DS2')"
"$PY" - "$DS" "$DS2" <<'EOF' || exit 1
import os, sys
import numpy as np
from PIL import Image
a, b = sys.argv[1:3]
for n in ("coffee", "rocket"):
    x = np.array(Image.open(os.path.join(a, "voc", "SegmentationClass", n + ".png")))
    y = np.array(Image.open(os.path.join(b, "voc", "SegmentationClass", n + ".png")))
    if x.shape != y.shape or (x != y).any():
        sys.exit("FAIL: %s: the folder export differs from the window's export" % n)
names = open(os.path.join(b, "voc", "ImageSets", "Segmentation", "default.txt")).read().split()
if names != ["astronaut", "chelsea", "coffee", "rocket"]:
    sys.exit("FAIL: the folder export lists %s" % names)
print("folder export: 4 images; coffee and rocket equal the window's export")
EOF

"$PY" - "$TMP/after-one" "$DS" "$TMP/photos" <<'EOF'
import json, os, sys
import numpy as np
from PIL import Image
import labelme
from labelme import utils as lmu

one, ds, photos = sys.argv[1:4]
NAMES = ["astronaut", "chelsea", "coffee", "rocket"]
fails = []
def check(ok, msg):
    if not ok:
        fails.append(msg)

def rle_decode(s, h, w):
    """COCO compressed RLE (the counts string of pycocotools), written from its
    definition: 6-bit chars from 48, 5 payload bits, 0x20 = more, 0x10 = sign of
    the last char; counts after the second are deltas to the one two back;
    runs alternate 0/1 starting with 0, column-major."""
    cnts, p = [], 0
    while p < len(s):
        x = k = 0
        more = True
        while more:
            c = ord(s[p]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(cnts) > 2:
            x += cnts[-2]
        cnts.append(x)
    flat = np.zeros(h * w, np.uint8)
    pos, v = 0, 0
    for c in cnts:
        flat[pos:pos + c] = v
        pos += c
        v ^= 1
    if pos != h * w:
        raise ValueError("RLE covers %d of %d pixels" % (pos, h * w))
    return flat.reshape((w, h)).T

def load_all(d):
    idx = json.load(open(os.path.join(d, "alignseg-export.json")))
    coco = json.load(open(os.path.join(d, "coco", "annotations.json")))
    lm = {}
    for line in open(os.path.join(d, "voc", "labelmap.txt")):
        line = line.strip()
        if line and not line.startswith("#"):
            name, rgb = line.split(":")[:2]
            lm[name] = tuple(int(t) for t in rgb.split(","))
    lst = open(os.path.join(d, "voc", "ImageSets", "Segmentation", "default.txt")).read().split()
    return idx, coco, lm, lst

# ---- sitting one: 2 images
idx1, coco1, lm1, lst1 = load_all(one)
ids1 = {m["name"]: m["id"] for m in idx1["images"]}
check(sorted(ids1) == ["astronaut", "chelsea"], "after sitting 1 the index lists %s" % sorted(ids1))
check(lst1 == ["astronaut", "chelsea"], "after sitting 1 VOC lists %s" % lst1)
check(len(coco1["images"]) == 2, "after sitting 1 COCO lists %d images" % len(coco1["images"]))
names1 = {c["name"] for c in coco1["categories"]}
check("ignore" in names1, "hidden group exported as 'ignore' missing from sitting 1: %s" % names1)
chelsea1 = np.array(Image.open(os.path.join(one, "voc", "SegmentationClass", "chelsea.png")))

# ---- the final dataset: 4 images
idx, coco, lm, lst = load_all(ds)
ids = {m["name"]: m["id"] for m in idx["images"]}
check(sorted(ids) == NAMES, "index lists %s" % sorted(ids))
for n in ids1:
    check(ids[n] == ids1[n], "%s changed id %d -> %d" % (n, ids1[n], ids[n]))
check(sorted(ids.values()) == [1, 2, 3, 4], "image ids %s" % sorted(ids.values()))
check(idx["next_image_id"] == 5, "next_image_id %s" % idx["next_image_id"])
check(sorted(lst) == NAMES and len(lst) == 4, "VOC default.txt lists %s" % lst)
cimg = {m["id"]: m for m in coco["images"]}
check(sorted(m["file_name"] for m in coco["images"]) ==
      ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg"],
      "COCO images %s" % sorted(m["file_name"] for m in coco["images"]))
for m in idx["images"]:
    check(m["id"] in cimg and cimg[m["id"]]["file_name"] == m["file"],
          "COCO image id %d is not %s" % (m["id"], m["file"]))

# one class table: name -> id -> colour
table = {c["name"]: (c["id"], tuple(c["color"])) for c in idx["classes"]}
used = {c for m in idx["images"] for c in m["classes"]}
used_names = {n for n, (i, _) in table.items() if i in used}
cat_names = {c["name"]: c["id"] for c in coco["categories"]}
check(set(cat_names) == used_names, "COCO categories %s, index classes used %s" % (sorted(cat_names), sorted(used_names)))
check(set(lm) - {"background"} == used_names, "VOC labelmap %s, index %s" % (sorted(lm), sorted(used_names)))
for n, i in cat_names.items():
    check(table[n][0] == i, "class %s: COCO id %d, index id %d" % (n, i, table[n][0]))
    check(lm.get(n) == table[n][1], "class %s: labelmap colour %s, index %s" % (n, lm.get(n), table[n][1]))
for want in ("cat", "sky", "ignore"):
    check(want in used_names, "named class %s not in the dataset: %s" % (want, sorted(used_names)))
id2name = {i: n for n, (i, _) in table.items()}

anns = {}
for a in coco["annotations"]:
    check(a["id"] == a["image_id"] * 1000 + a["category_id"], "annotation id %d" % a["id"])
    anns.setdefault(a["image_id"], []).append(a)

labelme_names = set()
for name in NAMES:
    iid = ids[name]
    voc_im = Image.open(os.path.join(ds, "voc", "SegmentationClass", name + ".png"))
    check(voc_im.mode == "P", "%s: VOC PNG mode %s" % (name, voc_im.mode))
    voc = np.array(voc_im).astype(np.int32)
    h, w = voc.shape
    photo = Image.open(os.path.join(photos, cimg[iid]["file_name"]))
    check(photo.size == (w, h), "%s: VOC size %s, photo %s" % (name, (w, h), photo.size))
    pal = voc_im.getpalette()
    for c in np.unique(voc):
        if c:
            check(tuple(pal[3 * c:3 * c + 3]) == table[id2name[c]][1], "%s: palette of class %d" % (name, c))
    idx_classes = next(m["classes"] for m in idx["images"] if m["name"] == name)
    check(sorted(int(c) for c in np.unique(voc) if c) == sorted(idx_classes),
          "%s: VOC classes %s, index %s" % (name, np.unique(voc), idx_classes))
    # COCO
    cmap = np.zeros((h, w), np.int32)
    cover = np.zeros((h, w), np.int32)
    for a in anns.get(iid, []):
        m = rle_decode(a["segmentation"]["counts"], *a["segmentation"]["size"])
        check(m.shape == (h, w), "%s: RLE size %s" % (name, m.shape))
        check(int(m.sum()) == a["area"], "%s: area %d, RLE %d" % (name, a["area"], m.sum()))
        cmap[m == 1] = a["category_id"]
        cover += m
    check(cover.max() <= 1, "%s: COCO annotations overlap" % name)
    agree = float((cmap == voc).mean())
    check(agree == 1.0, "%s: COCO and VOC agree on %.4f of the pixels" % (name, agree))
    # masks
    mdir = os.path.join(ds, "masks", name)
    files = sorted(os.listdir(mdir))
    check(files == sorted(id2name[c] + ".png" for c in idx_classes), "%s: masks %s" % (name, files))
    for f in files:
        m = np.array(Image.open(os.path.join(mdir, f)))
        check(((m > 0) == (voc == table[f[:-4]][0])).all(), "%s: mask %s differs from VOC" % (name, f))
    # labelme, with its own loader
    lf = labelme.LabelFile(os.path.join(ds, "labelme", name + ".json"))
    check(lf.imageData is not None, "%s: labelme found no image at %s" % (name, lf.imagePath))
    if lf.imageData is not None:
        arr = lmu.img_data_to_arr(lf.imageData)
        check(arr.shape[:2] == (h, w), "%s: labelme image %s" % (name, arr.shape))
    labels = {s["label"] for s in lf.shapes}
    labelme_names |= labels
    check(labels == {id2name[c] for c in idx_classes}, "%s: labelme labels %s" % (name, sorted(labels)))
    lm_map, _ = lmu.shapes_to_label((h, w), lf.shapes, {n: i for n, (i, _) in table.items()})
    agree_lm = float((lm_map == voc).mean())
    check(agree_lm >= 0.98, "%s: labelme and VOC agree on %.4f of the pixels" % (name, agree_lm))
    print("%s: id %d, %dx%d, classes %s, COCO=VOC %.4f, labelme=VOC %.4f" %
          (name, iid, w, h, [id2name[c] for c in idx_classes], agree, agree_lm))
check(labelme_names == used_names, "labelme labels %s, index %s" % (sorted(labelme_names), sorted(used_names)))

# chelsea was re-exported with K=3: new labels, no stale class
chelsea = np.array(Image.open(os.path.join(ds, "voc", "SegmentationClass", "chelsea.png")))
check(chelsea.shape == chelsea1.shape and (chelsea != chelsea1).any(),
      "chelsea's re-export did not replace its labels")
# the correction was exported: a disc of radius 25 around (200, 150) is "cat"
yy, xx = np.mgrid[0:chelsea.shape[0], 0:chelsea.shape[1]]
disc = (xx - 200) ** 2 + (yy - 150) ** 2 <= 25 ** 2
check((chelsea[disc] == table["cat"][0]).all(),
      "chelsea's brush correction is not in the export (%d of %d pixels cat)" %
      ((chelsea[disc] == table["cat"][0]).sum(), disc.sum()))
print("classes:", sorted((i, n) for n, (i, _) in table.items() if n in used_names))
if fails:
    for f in fails:
        print("FAIL:", f)
    sys.exit(1)
print("dataset: 4 images, COCO, VOC, masks and labelme agree")
EOF
