#!/usr/bin/env bash
# The one test command: typecheck, lint, then every test file through Node's own runner.
# The runner's summary (tests / pass / fail counts) is the last thing printed.
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s globstar nullglob
echo "== typecheck"
npx tsc --noEmit -p tsconfig.json
npx tsc --noEmit -p web/tsconfig.json
npx tsc --noEmit -p web/tsconfig.node.json
echo "== lint"
npx biome check .
# web/ has its own config (the root one extended, minus the build output): web/biome.web.json.
(cd web && npx biome check --config-path biome.web.json .)
bash scripts/ensure-system-deps.sh
echo "== build the dashboard (web/dist, served at /ui; the browser tests use it)"
npm run --silent build:web
files=(src/**/*.test.ts test/**/*.test.ts bench/**/*.test.ts)
echo "== tests (${#files[@]} files)"
exec node --import tsx --test --test-concurrency=2 --test-reporter=spec "${files[@]}"
