#!/bin/bash
# test 'completion': completion/alignseg.bash, sourced into bash with the
# programs of this build first on PATH, completes commands, options, option
# values and file types:
#   alignseg seg<TAB> -> segment; alignseg segment --mo<TAB> -> --model;
#   alignseg segment -m <TAB> -> the .pth/.safetensors files and folders, no
#   image; alignseg segment <TAB> -> images, no checkpoint; alignseg export
#   --format voc,c<TAB> -> voc,coco; alignseg train -o <TAB> -> folders only;
#   alignseg-viewer --vi<TAB> -> --view; --view <TAB> -> the four views;
#   alignseg-viewer --model=<TAB> -> checkpoints.
# Usage: test_completion.sh COMPLETION-FILE ALIGNSEG [ALIGNSEG-VIEWER]
set -u
comp=$1 bin=$2 viewer=${3:-}
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
mkdir -p "$t/bin" "$t/files/sub"
ln -s "$bin" "$t/bin/alignseg"
[ -n "$viewer" ] && ln -s "$viewer" "$t/bin/alignseg-viewer"
export PATH="$t/bin:$PATH"
: > "$t/files/a.pth"; : > "$t/files/b.safetensors"; : > "$t/files/c.png"; : > "$t/files/d.jpg"
: > "$t/files/e.txt"
cd "$t/files" || exit 1
# shellcheck disable=SC1090
source "$comp" || { echo "FAIL: sourcing $comp"; exit 1; }
status=0
# complete WORD... : COMPREPLY for the last word
complete_words() {
    COMP_WORDS=("$@")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMPREPLY=()
    local f
    f=$(complete -p "$1" 2> /dev/null | sed -n 's/.*-F \([^ ]*\) .*/\1/p')
    [ -n "$f" ] || { echo "FAIL: no completion for $1"; status=1; return; }
    "$f" 2> /dev/null
    printf '%s\n' "${COMPREPLY[@]}" | sort
}
expect() { # expect 'WANT1 WANT2' 'NOT1 NOT2' WORD...
    local want=$1 not=$2 got w
    shift 2
    got=$(complete_words "$@")
    for w in $want; do
        grep -qxF -- "$w" <<< "$got" || { echo "FAIL: '$*' offers no '$w' (got: $(echo $got))"; status=1; }
    done
    for w in $not; do
        grep -qxF -- "$w" <<< "$got" && { echo "FAIL: '$*' offers '$w' (got: $(echo $got))"; status=1; }
    done
    echo "ok: '$*' -> $(echo $got | head -c 200)"
}
expect 'segment' 'export' alignseg seg
expect 'train train-step' 'segment' alignseg tr
expect '--model' '--merge-to' alignseg segment --mo
expect '--merge-to --merge-threshold' '--model' alignseg export --merge
expect 'a.pth b.safetensors sub/' 'c.png d.jpg e.txt' alignseg segment -m ''
expect 'a.pth b.safetensors' 'c.png' alignseg eval --backbone ''
expect 'c.png d.jpg sub/' 'a.pth e.txt' alignseg segment -m a.pth ''
expect 'voc,coco' 'voc' alignseg export --format voc,c
expect 'sub/' 'a.pth c.png' alignseg train -o ''
expect 'hungarian' '' alignseg eval --protocol h
expect 'vit_small vit_base' '' alignseg bench --arch ''
if [ -n "$viewer" ]; then
    expect '--view --untrained --model' '-m' alignseg-viewer --
    expect 'segmentation attention prototypes similarity' '' alignseg-viewer --view ''
    expect 'a.pth b.safetensors' 'c.png' alignseg-viewer --model=''
    expect 'c.png d.jpg' 'a.pth' alignseg-viewer ''
fi
[ $status -eq 0 ] && echo "completion: ok"
exit $status
