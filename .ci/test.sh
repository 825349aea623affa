#!/usr/bin/env bash
# `npm test`: install what is missing, start the local stack, run every test, stop what we started.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/node-runtime.sh

log() { printf '[test] %s\n' "$*" >&2; }
start=$(date +%s)

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing npm packages (npm ci)"
  npm ci --no-audit --no-fund
fi

if [ "${PARITY_TEST_BROWSER:-1}" = "1" ] && [ ! -x /usr/bin/chromium ]; then
  log "installing Debian's chromium for the browser tests"
  if [ "$(id -u)" = "0" ]; then sudo_cmd=(); else sudo_cmd=(sudo -n); fi
  "${sudo_cmd[@]}" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium' >&2 || log "chromium install failed; browser tests will report it"
fi

# The CLI (services/cli/bin/parity.js) runs the compiled JavaScript in dist/; the tests spawn it.
log "building dist/ (npm run build)"
node .ci/build.mjs

# Start the stack (fetching Kafka/Apicurio with Maven and installing redis-server when missing).
# Remember which services this run started, so a developer's already-running stack is left alone.
status_file=$(mktemp)
trap 'rm -f "$status_file"' EXIT
log "starting the local stack"
node services/cli/bin/parity.js stack up --json > "$status_file"
started=$(node -e 'const s=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));console.log(s.services.filter(x=>x.action==="started").map(x=>x.service).join(" "))' "$status_file")
log "stack up in $(( $(date +%s) - start ))s (started: ${started:-none, all reused})"

stop_stack() {
  if [ -n "$started" ]; then
    log "stopping what this run started: $started"
    node services/cli/bin/parity.js stack down $started >&2 || true
  fi
  rm -f "$status_file"
}
trap stop_stack EXIT

eval "$(node services/cli/bin/parity.js stack env)"
npx tsc --noEmit -p .
# Layering and cycles (.dependency-cruiser.cjs): a forbidden arrow or a cycle fails the run before any test.
npm run --silent lint:deps
# One formatter owns layout (biome.json): an unformatted file fails the run.
npm run --silent format:check

# Prometheus config and alert rules: syntax, then the rules' unit tests (deploy/prometheus/alerts.test.yml).
# promtool comes from Debian's prometheus package, installed when missing (like redis-server).
if ! command -v promtool > /dev/null; then
  log "installing Debian's prometheus (promtool)"
  if [ "$(id -u)" = "0" ]; then sudo_cmd=(); else sudo_cmd=(sudo -n); fi
  "${sudo_cmd[@]}" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus' >&2
fi
promtool check config deploy/prometheus/prometheus.yml
promtool check rules deploy/prometheus/alerts.yml
promtool test rules deploy/prometheus/alerts.test.yml

# Conformance against Debezium (test/conformance, vitest project `conformance`): Kafka Connect and
# Debezium's jars come through Maven into the cache once (again when their POMs change); fetched here,
# timed apart from the tests.
connect_start=$(date +%s)
node --input-type=module -e "const c = await import('./dist/services/stack/config.js'); const m = await import('./dist/services/stack/connect.js'); m.ensureConnectJars(c.stackConfig());"
log "Kafka Connect + Debezium jars ready in $(( $(date +%s) - connect_start ))s"

npx vitest run --config test/vitest.config.ts "$@"

# The secured stack (issue 16): its own state dir and ports, started and stopped by test-secure.sh
# (the lock, verify, cache versioner and CDC no-loss suites against it). Whole runs only (no file
# arguments); PARITY_TEST_SECURE=0 skips it.
if [ $# -eq 0 ] && [ "${PARITY_TEST_SECURE:-1}" = "1" ]; then
  secure_start=$(date +%s)
  log "secured stack: npm run test:secure"
  bash .ci/test-secure.sh
  log "secured stack done in $(( $(date +%s) - secure_start ))s"
fi
log "done in $(( $(date +%s) - start ))s"
