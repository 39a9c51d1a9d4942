#!/bin/bash
# demo.sh - the README's first command: install the packages, build, and run the main job
# (scripts/demo-run.sh: a real, isolated Postfix on loopback with sluice-policyd in front).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
exec bash scripts/demo-run.sh build
