#!/bin/bash
# CI: labelme 5.1.1 (Debian package labelme) for tests/test_viewer_dataset.sh,
# which reads the viewer's labelme export with labelme's own loader
# (labelme.LabelFile); without it the test skips.
set -u
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends labelme python3-numpy python3-pil xvfb xauth \
    >/dev/null || { echo "labelme: cannot install labelme python3-numpy python3-pil xvfb"; exit 1; }
