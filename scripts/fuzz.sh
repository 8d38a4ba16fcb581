#!/usr/bin/env bash
# npm run fuzz [-- --cases N --seed S]: builds, then runs every decoder on mutated and random input (test/fuzz/run.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
npx tsc -p tsconfig.json
exec node dist/test/fuzz/run.js "$@"
