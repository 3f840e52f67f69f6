#!/bin/sh
# test_viewer_cli: alignseg-viewer's command line without a display:
#   - --help documents the scripting interface (--view, --action with the
#     slider and export actions, --screenshot);
#   - run from the build tree (as the README's first command does), the
#     interface is translated: the zh_CN catalogue compiled into build/po is
#     found without installing and without ALIGNSEG_LOCALEDIR.
# Usage: test_viewer_cli.sh VIEWER_BINARY
set -u
VIEWER=${1:?usage: test_viewer_cli.sh VIEWER}
fail=0
unset ALIGNSEG_LOCALEDIR

help=$(LANGUAGE= LC_ALL=C.UTF-8 "$VIEWER" --help-all 2>&1)
for want in "--view=NAME" "--action=NAME(ARG)" "--screenshot=FILE" "win.prototype-count(K)" \
    "win.merge-threshold(T)" "win.mass-kept(M)" "win.opacity(A)" "win.export-folder('DIR')"; do
    printf '%s\n' "$help" | grep -qF -- "$want" || { echo "FAIL: --help does not mention $want"; fail=1; }
done

zh=$(LANGUAGE=zh_CN LC_ALL=C.UTF-8 "$VIEWER" --help 2>&1)
if printf '%s\n' "$zh" | grep -q "^Usage:"; then
    echo "FAIL: run from the build tree, --help stays English under LANGUAGE=zh_CN:"
    printf '%s\n' "$zh" | head -3
    fail=1
elif ! printf '%s\n' "$zh" | grep -q "用法"; then
    echo "FAIL: no zh_CN usage line:"; printf '%s\n' "$zh" | head -3; fail=1
fi

[ $fail = 0 ] && echo "viewer command line test passed"
exit $fail
