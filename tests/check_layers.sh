#!/bin/sh
# check_layers: every #include "x.h" in core/<layer>/, app/ and ui/ names a
# header of a layer that the table in docs/ARCHITECTURE.md allows for the
# including layer (so nothing in core/ includes a header of app/ or ui/, and a
# layer of core/ never includes one above it). The table (between the markers
# <!-- layers:begin --> and <!-- layers:end -->) is the only place the rule is
# written; listed exceptions (<!-- exceptions:begin --> ... end) are allowed
# but reported. Headers are named by their base name (meson puts every layer
# folder on the include path), so a base name must be unique.
#
# Usage: check_layers.sh SRCROOT [ARCHITECTURE.md]
#        check_layers.sh --self-test ARCHITECTURE.md   (the check catches an
#        upward include in a throwaway tree, and passes a clean one)
set -eu

if [ "${1:-}" = --self-test ]; then
    doc=$2
    t=$(mktemp -d)
    trap 'rm -rf "$t"' EXIT
    mkdir -p "$t/core/base" "$t/core/model" "$t/app" "$t/ui"
    : > "$t/core/base/error.h"
    : > "$t/core/model/vit.h"
    : > "$t/app/cli.h"
    : > "$t/ui/window.h"
    printf '#include "error.h"\n#include "vit.h"\n' > "$t/core/base/bad.c"
    printf '#include "cli.h"\n' > "$t/core/model/worse.c"
    printf '#include "vit.h"\n#include "cli.h"\n' > "$t/ui/window.c"
    if out=$("$0" "$t" "$doc" 2>&1); then
        echo "self-test: upward includes were not caught:"
        echo "$out"
        exit 1
    fi
    for want in 'core/base/bad.c includes vit.h (model)' 'core/model/worse.c includes cli.h (app)' \
        'ui/window.c includes cli.h (app)'; do
        if ! printf '%s\n' "$out" | grep -qF "$want"; then
            echo "self-test: no line '$want' in:"
            echo "$out"
            exit 1
        fi
    done
    printf '#include "error.h"\n#include <stdio.h>\n' > "$t/core/base/bad.c"
    printf '#include "vit.h"\n#include "error.h"\n' > "$t/core/model/worse.c"
    printf '#include "vit.h"\n#include "window.h"\n' > "$t/ui/window.c"
    if ! out=$("$0" "$t" "$doc" 2>&1); then
        echo "self-test: a clean tree was refused:"
        echo "$out"
        exit 1
    fi
    echo "self-test: ok"
    exit 0
fi

root=${1:?usage: check_layers.sh SRCROOT [ARCHITECTURE.md]}
doc=${2:-$root/docs/ARCHITECTURE.md}
[ -f "$doc" ] || { echo "check_layers: $doc not found"; exit 1; }
[ -d "$root/core" ] || { echo "check_layers: $root/core not found"; exit 1; }

# header basename -> layer (core/<layer>/, or app / ui)
map=$(mktemp)
trap 'rm -f "$map"' EXIT
for dir in "$root"/core/*/ "$root"/app/ "$root"/ui/; do
    [ -d "$dir" ] || continue
    layer=$(basename "$dir")
    for h in "$dir"*.h; do
        [ -f "$h" ] && printf '%s %s\n' "$(basename "$h")" "$layer" >> "$map"
    done
done

status=0
# one line per include: "file header"
for f in "$root"/core/*/*.c "$root"/core/*/*.h "$root"/app/*.c "$root"/app/*.h "$root"/ui/*.c \
    "$root"/ui/*.h; do
    [ -f "$f" ] || continue
    rel=${f#"$root"/}
    sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f" |
        while read -r inc; do printf '%s %s\n' "$rel" "$(basename "$inc")"; done
done | awk -v doc="$doc" -v mapfile="$map" '
    BEGIN {
        while ((getline line < doc) > 0) {
            if (line ~ /<!-- layers:begin -->/) { inl = 1; continue }
            if (line ~ /<!-- layers:end -->/) { inl = 0; continue }
            if (line ~ /<!-- exceptions:begin -->/) { inx = 1; continue }
            if (line ~ /<!-- exceptions:end -->/) { inx = 0; continue }
            if (inl && line ~ /^\|/) {
                n = split(line, cell, "|")
                name = cell[2]; gsub(/[` ]/, "", name)
                if (name == "" || name ~ /^-+$/ || name == "layer") continue
                allow = cell[3]; gsub(/[` ]/, "", allow)
                rows[name] = 1; nrows++
                ok[name, name] = 1
                m = split(allow, a, ",")
                for (i = 1; i <= m; i++) if (a[i] != "" && a[i] != "-") ok[name, a[i]] = 1
            }
            if (inx && line ~ /^- `/) {
                # - `core/compute/kernels.h` includes `model.h`: why
                split(line, q, "`")
                exc[q[2], q[4]] = 1
                excs[q[2] " " q[4]] = 1
            }
        }
        if (nrows == 0) { print "check_layers: no layer table in " doc; bad = 1 }
        while ((getline line < mapfile) > 0) {
            split(line, p, " ")
            if ((p[1] in where) && where[p[1]] != p[2])
                dup[p[1]] = where[p[1]] " and " p[2]
            where[p[1]] = p[2]
        }
        for (h in dup) { print "check_layers: header " h " exists in " dup[h]; bad = 1 }
    }
    {
        file = $1; hdr = $2
        split(file, parts, "/"); layer = parts[1] == "core" ? parts[2] : parts[1]
        if (!(layer in rows) && !(layer in norow)) {
            print "check_layers: " layer " has no row in the layer table of " doc
            norow[layer] = 1; bad = 1
        }
        if (!(hdr in where)) next               # system or generated header
        target = where[hdr]
        if ((layer, target) in ok) next
        if ((file, hdr) in exc) { seen[file " " hdr] = 1; next }
        print file " includes " hdr " (" target "): " layer " may include only what the table allows"
        bad = 1
    }
    END {
        for (e in excs)
            if (e in seen) print "known exception (see " doc "): " e
            else print "note: listed exception no longer occurs, remove it from " doc ": " e
        exit bad
    }
' || status=1

if [ $status -eq 0 ]; then
    echo "check_layers: the includes of core/, app/ and ui/ follow the layer table"
fi
exit $status
