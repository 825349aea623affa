#!/usr/bin/env bash
# npm run test:secure (issue 16): starts a secured stack (parity stack up --secure) on a state dir and
# ports of its own, runs the suites that already speak its settings against it, stops it, and prints
# {"seconds": ...} as its last line. The plaintext stack is never touched.
#
# Covered, each against the secured stack (its specs and clients get TLS, SASL_SSL + SCRAM, the Redis
# ACL user and the registry's basic auth from test/support/security.ts, passwords as ${VAR}):
# - the lock suite (PostgreSQL over verify-full TLS, Redis over rediss:// as an ACL user);
# - verify: the correctness matrix and stream verification (Kafka, registry, both clusters);
# - the cache versioner: the invariant and its CLI commands (Kafka, registry, Redis);
# - the CDC no-loss fault test (SIGKILLs and a restart of the secured broker; it runs last, alone);
# - the secured-stack refusals and certificate reuse (secure.test.ts starts a secured stack of its own).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source .ci/node-runtime.sh

start=$(date +%s)
state=$(mktemp -d -t parity-secure-ci-XXXXXX)
# Below Linux's ephemeral range (32768-60999): a client socket's local port can never take one of these.
base=${PARITY_TEST_SECURE_BASE:-26300}
export PARITY_STATE_DIR="$state/state" PARITY_PG_SOURCE_PORT=$base PARITY_PG_TARGET_PORT=$((base + 1)) \
  PARITY_KAFKA_PORT=$((base + 10)) PARITY_KAFKA_CONTROLLER_PORT=$((base + 11)) PARITY_REGISTRY_PORT=$((base + 20)) \
  PARITY_REGISTRY_MANAGEMENT_PORT=$((base + 21)) PARITY_REDIS_PORT=$((base + 30))

stop() {
  node services/cli/bin/parity.js stack down --secure >/dev/null 2>&1 || true
  # Run as root, PostgreSQL's data sits outside the state dir (services/stack/config.ts pgRoot).
  pgroot=$(node --input-type=module -e "const { stackConfig } = await import('./dist/services/stack/config.js'); console.log(stackConfig(process.env, { secure: true }).pgRoot)" 2>/dev/null || true)
  if [ -n "$pgroot" ]; then rm -rf "$pgroot"; fi
  rm -rf "$state"
}
trap stop EXIT

npm run --silent build >/dev/null
eval "$(node services/cli/bin/parity.js stack up --secure)"
# The no-loss test restarts the broker through stackDown/stackUp: the secured stack's, by this.
export PARITY_STACK_SECURE=1
# Test helpers open Redis from PARITY_REDIS_URL alone: Node trusts the stack's CA for them.
export NODE_EXTRA_CA_CERTS="$PARITY_CA_FILE"

npx vitest run --config test/vitest.config.ts --project integration \
  test/integration/coordinator/lock.test.ts \
  test/integration/reconciler/correctness-matrix.test.ts test/integration/reconciler/stream-reconcile.test.ts \
  test/integration/cache-versioner/invariant.test.ts test/integration/cache-versioner/cli.test.ts \
  test/integration/stack/secure-certs.test.ts

# The fault test alone, once the others are done (it restarts the secured Kafka). A shorter run than
# the plaintext suite's (40 s of writers, a 50,000-row transaction instead of 200,000): the same six
# SIGKILLs, broker restart and TRUNCATE, in about half the time.
PARITY_NOLOSS_RUN_MS=${PARITY_NOLOSS_RUN_MS:-40000} PARITY_NOLOSS_BIG_TX=${PARITY_NOLOSS_BIG_TX:-50000} \
  npx vitest run --config test/vitest.config.ts --project faults test/integration/cdc/no-loss.test.ts

# The refusal tests start a secured stack of their own on other ports.
PARITY_TEST_SECURE_PORT_BASE=$((base + 100)) npx vitest run --config test/vitest.config.ts test/integration/stack/secure.test.ts

echo "{\"seconds\": $(($(date +%s) - start))}"
