#!/bin/sh
# test 'api': libalignseg as another program sees it.
#  1. examples/segment_example (built against the uninstalled libalignseg.so.0
#     and include/ only) writes the same label map as `alignseg segment`, the
#     same merged one as `alignseg segment --merge-to 2`, and the same VOC
#     export as `alignseg export --format voc --merge-to 2` (byte for byte);
#  2. the library exports the functions of include/alignseg/ and nothing else
#     (every dynamic symbol it defines starts with alignseg_, under ALIGNSEG_0),
#     and every ALIGNSEG_API function of the headers is exported;
#  3. the example is linked to libalignseg.so.0 (not to a static copy);
#  4. pkg-config's alignseg-uninstalled.pc compiles the example with cc alone.
# Usage: test_api.sh EXAMPLE ALIGNSEG LIBALIGNSEG SRCROOT BUILDROOT
set -eu
ex=$1 bin=$2 lib=$3 src=$4 build=$5
model=$src/tests/data/reference/infer_tiny/alignseg.pth
img=$src/tests/data/reference/infer_tiny/input.png
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
export OPENBLAS_NUM_THREADS=1
opts="--encoder-heads 3 --size 64" # the tiny reference model (tests/data/reference/infer_tiny)

# 1. the same outputs as the programs
mkdir -p "$t/ex" "$t/exm" "$t/cli" "$t/clim"
"$ex" $opts "$model" "$img" "$t/ex" > "$t/ex.log" || { cat "$t/ex.log"; fail "segment_example failed"; }
"$bin" segment -q --threads 1 $opts -m "$model" -o "$t/cli" "$img"
cmp "$t/ex/input.labels.png" "$t/cli/input.labels.png" ||
    fail "the example's labels differ from alignseg segment's"
"$ex" $opts --merge-to 2 "$model" "$img" "$t/exm" > "$t/exm.log" || { cat "$t/exm.log"; fail "segment_example (merge) failed"; }
grep -q '^merged to 2 groups:' "$t/exm.log" || { cat "$t/exm.log"; fail "no 'merged to 2 groups'"; }
"$bin" segment -q --threads 1 $opts --merge-to 2 -m "$model" -o "$t/clim" "$img"
cmp "$t/exm/input.labels.png" "$t/clim/input.labels.png" ||
    fail "the example's merged labels differ from alignseg segment --merge-to 2"
cmp -s "$t/ex/input.labels.png" "$t/exm/input.labels.png" && fail "merging changed nothing"
"$bin" export -q --threads 1 $opts --merge-to 2 --format voc -m "$model" -o "$t/cliexp" "$img"
cmp "$t/exm/export/voc/SegmentationClass/input.png" "$t/cliexp/voc/SegmentationClass/input.png" ||
    fail "the example's VOC export differs from alignseg export's"
[ -s "$t/exm/input.overlay.png" ] || fail "no overlay"
echo "ok: example = alignseg segment (plain, --merge-to 2) = alignseg export (VOC)"

# 2. exported symbols
if command -v nm > /dev/null; then
    nm -D --defined-only "$lib" | awk '{sub(/@.*/, "", $3); print $3}' | sort -u > "$t/syms"
    bad=$(grep -v -e '^alignseg_' -e '^ALIGNSEG_0$' "$t/syms" || true)
    [ -z "$bad" ] || fail "libalignseg exports more than its API: $(echo $bad | head -c 400)"
    sed -n 's/^ALIGNSEG_API[^(]*[ *]\(alignseg_[a-z_0-9]*\)(.*/\1/p' "$src"/include/alignseg/*.h |
        sort -u > "$t/api"
    [ "$(wc -l < "$t/api")" -ge 20 ] || fail "found only $(wc -l < "$t/api") API functions in the headers"
    missing=$(comm -23 "$t/api" "$t/syms")
    [ -z "$missing" ] || fail "declared but not exported: $missing"
    extra=$(grep '^alignseg_' "$t/syms" | comm -13 "$t/api" -)
    [ -z "$extra" ] || fail "exported but not declared in include/alignseg: $extra"
    nm -D --defined-only --with-symbol-versions "$lib" 2>/dev/null | grep -q 'alignseg_model_load@@ALIGNSEG_0' ||
        fail "alignseg_model_load has no ALIGNSEG_0 version"
    echo "ok: libalignseg exports exactly the $(wc -l < "$t/api") functions of include/alignseg"
else
    echo "nm missing (package binutils): symbol check skipped"
fi

# 3. linked to the shared library
if command -v readelf > /dev/null; then
    readelf -d "$ex" | grep -q 'NEEDED.*\[libalignseg\.so\.0\]' || fail "the example does not need libalignseg.so.0"
    readelf -d "$lib" | grep -q 'SONAME.*\[libalignseg\.so\.0\]' || fail "soname is not libalignseg.so.0"
fi

# 4. pkg-config (uninstalled .pc)
pcdir=$build/meson-uninstalled
if command -v readelf > /dev/null && readelf -d "$lib" | grep -q 'NEEDED.*libasan'; then
    echo "sanitizer build (the library needs libasan): pkg-config build of the example skipped"
elif command -v pkg-config > /dev/null && command -v cc > /dev/null && [ -f "$pcdir/alignseg-uninstalled.pc" ]; then
    flags=$(PKG_CONFIG_PATH=$pcdir pkg-config --cflags --libs alignseg) || fail "pkg-config alignseg failed"
        cc -std=c11 -Wall -Wextra -Werror -o "$t/ex_pc" "$src/examples/segment_example.c" $flags ||
        fail "cc with pkg-config's flags ($flags) failed"
    mkdir -p "$t/pc"
    LD_LIBRARY_PATH=$(dirname "$lib") "$t/ex_pc" $opts "$model" "$img" "$t/pc" > /dev/null ||
        fail "the pkg-config build of the example failed"
    cmp "$t/pc/input.labels.png" "$t/cli/input.labels.png" || fail "pkg-config build: other labels"
    echo "ok: pkg-config --cflags --libs alignseg builds the example"
else
    echo "pkg-config, cc or meson-uninstalled/alignseg-uninstalled.pc missing: pkg-config check skipped"
fi
echo "api: ok"
