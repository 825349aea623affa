/**
 * Opens what the coordinator commands need for one spec (control, target and source pools, Redis)
 * and closes it again. Only the CLI layer calls this; the coordinator itself receives its clients.
 */
import type pg from 'pg';
import type { Redis } from 'ioredis';
import { createPgPool, createRedis } from '../core/clients.js';
import { createLogger, type Logger } from '../core/log.js';
import { controlDatabase, targetDatabase, type LoadedSpec } from '../core/spec.js';
import { createCoordinator, type Coordinator } from './coordinator.js';
import type { ContractGate } from './gates.js';

export interface CoordinatorContext {
  coordinator: Coordinator;
  control: pg.Pool;
  target: pg.Pool;
  redis: Redis;
  logger: Logger;
  close(): Promise<void>;
}

/**
 * The seam to the reconciler's `parity gate contract`: when services/reconciler/contract-gate.ts is
 * present, its verdict (which also measures CDC lag live from the replication slot) is the
 * contract gate; otherwise the coordinator's own reading of the evidence (contract-criteria.ts).
 */
export async function reconcilerContractGate(loaded: LoadedSpec, control: pg.Pool, source: pg.Pool, logger: Logger): Promise<ContractGate | undefined> {
  try {
    const mod = await import('../reconciler/contract-gate.js');
    if (typeof mod.evaluateContractGate !== 'function') return undefined;
    return async (inputs) => {
      const result = await mod.evaluateContractGate(loaded, { control, source, now: () => inputs.now });
      return result.criteria.map((c) => ({
        name: c.name,
        passed: c.passed,
        detail: `measured ${c.measured}; required ${c.required}${c.reason ? ` (${c.reason})` : ''}`,
        value: { required: c.required, measured: c.measured },
      }));
    };
  } catch (err) {
    logger.warn({ err: (err as Error).message }, "the reconciler's contract gate is not available; using the coordinator's reading of the evidence");
    return undefined;
  }
}

export async function openCoordinator(loaded: LoadedSpec, options: { logger?: Logger } = {}): Promise<CoordinatorContext> {
  const { spec } = loaded;
  const logger = options.logger ?? createLogger({ name: 'coordinator', level: process.env.PARITY_LOG_LEVEL ?? 'warn' });
  const pools = new Map<string, pg.Pool>();
  const pool = (url: string): pg.Pool => {
    let p = pools.get(url);
    if (!p) {
      p = createPgPool(url, { applicationName: 'parity-coordinator', max: 3 });
      pools.set(url, p);
    }
    return p;
  };
  const control = pool(controlDatabase(spec));
  const target = pool(targetDatabase(spec));
  const source = pool(spec.source.database);
  const redis = createRedis(spec.infra.redis.url);
  // Connection errors surface on the command that needs Redis; the event must not crash the CLI.
  redis.on('error', () => undefined);
  const contractGate = await reconcilerContractGate(loaded, control, source, logger);
  const coordinator = createCoordinator({ spec, control, target, redis, logger, ...(contractGate ? { contractGate } : {}) });
  return {
    coordinator,
    control,
    target,
    redis,
    logger,
    async close() {
      redis.disconnect();
      await Promise.all([...pools.values()].map((p) => p.end().catch(() => undefined)));
    },
  };
}
