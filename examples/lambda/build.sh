#!/usr/bin/env bash
# Bundle handler.py with duragent and its dependencies into build/ for template.yaml (CodeUri).
# Wheels are fetched for Lambda's platform (Linux x86_64, CPython 3.12) whatever this machine is.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
rm -rf build && mkdir build
"$PYTHON" -m pip install --quiet --no-deps --target build ../..
"$PYTHON" -m pip install --quiet --target build --platform manylinux2014_x86_64 --implementation cp \
    --python-version 3.12 --only-binary=:all: "pydantic>=2.7" "tenacity>=8.2" "boto3>=1.44"   # 1.44: the durable execution APIs
cp handler.py build/
echo "built $(du -sh build | cut -f1) in $(pwd)/build"
