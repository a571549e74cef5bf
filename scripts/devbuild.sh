#!/bin/sh
# Build the fast path into a private directory so several people (or
# helpers) can build side by side without racing on ext/*.so:
#   scripts/devbuild.sh NAME   ->  then run with PYTHONPATH=/tmp/vdp-NAME/lib:$PWD
set -e
name=${1:?usage: devbuild.sh NAME}
cd "$(dirname "$0")/.."
python3 setup.py -q build_ext --build-lib "/tmp/vdp-$name/lib" --build-temp "/tmp/vdp-$name/tmp" >/dev/null
cp ext/__init__.py "/tmp/vdp-$name/lib/ext/__init__.py"
echo "built: PYTHONPATH=/tmp/vdp-$name/lib:$PWD"
