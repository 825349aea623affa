import { defineConfig } from 'vitest/config';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/**
 * Fault tests stop and restart a shared service of the local stack (Kafka, Redis). They run last and
 * alone, so no other test ever sees the outage they cause.
 */
const FAULT_TESTS = [
  'test/integration/cdc/no-loss.test.ts',
  'test/integration/cache-versioner/redis-outage.test.ts',
  // Starts its own three-broker Kafka (its own ports and state dir) and kills a partition leader.
  'test/integration/kafka/leader-failover.test.ts',
  // Not faults, but they judge the backfill's throttle by the shared cluster's latency and WAL: another
  // test writing at the same time moves their signals, so they run with the faults, alone.
  'test/integration/backfill/latency-guard.test.ts',
  'test/integration/backfill/replica-lag.test.ts',
];

/** Spawned services inherit this: PARITY_STATUS_PORT=0 comes before the spec and the fixed defaults. */
const STATUS_ON_FREE_PORTS = { PARITY_STATUS_PORT: '0' };

export default defineConfig({
  test: {
    root,
    projects: [
      {
        test: {
          name: 'unit',
          root,
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 20_000,
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          name: 'integration',
          root,
          include: ['test/integration/**/*.test.ts', 'test/e2e/**/*.test.ts'],
          exclude: FAULT_TESTS,
          // Integration tests share one local stack on a 2-core machine: few files at once, long timeouts.
          maxWorkers: 2,
          // Services spawned by tests serve status on any free port, never on the fixed defaults
          // (parallel files would collide); a test that needs a port passes --status-port.
          env: STATUS_ON_FREE_PORTS,
          testTimeout: 180_000,
          hookTimeout: 180_000,
          sequence: { groupOrder: 1 },
        },
      },
      {
        // Conformance against Debezium itself (test/conformance/README.md): a Kafka Connect worker of the
        // test's own next to the shared stack; one file at a time (a JVM each).
        test: {
          name: 'conformance',
          root,
          include: ['test/conformance/**/*.test.ts'],
          maxWorkers: 1,
          fileParallelism: false,
          env: STATUS_ON_FREE_PORTS,
          testTimeout: 180_000,
          hookTimeout: 900_000,
          // After the integration tests, before the faults (which restart Kafka under everything).
          sequence: { groupOrder: 2 },
        },
      },
      {
        test: {
          name: 'faults',
          root,
          include: FAULT_TESTS,
          maxWorkers: 1,
          fileParallelism: false,
          env: STATUS_ON_FREE_PORTS,
          testTimeout: 600_000,
          hookTimeout: 180_000,
          sequence: { groupOrder: 3 },
        },
      },
    ],
  },
});
