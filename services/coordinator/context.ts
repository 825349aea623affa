/**
 * Opens what the coordinator commands need for one spec (control, target and source pools, Redis)
 * and closes it again. Only the CLI layer calls this; the coordinator itself receives its clients.
 */
import type pg from 'pg';
import type { Redis } from 'ioredis';
import { createPgPool, createRedis } from '../core/clients.js';
import { createLogger, type Logger } from '../core/log.js';
import { controlDatabase, targetDatabase, type LoadedSpec } from '../core/spec.js';
import { createCoordinator, type Coordinator, type ReverseWindowCloser } from './coordinator.js';
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
 * Makes the contract gate for one spec from the clients opened here. The CLI wiring passes the
 * reconciler's (services/cli/contract-gate.ts); nothing in the coordinator imports the reconciler.
 */
export type ContractGateFactory = (loaded: LoadedSpec, clients: { source: pg.Pool; logger: Logger }) => ContractGate;

export interface OpenCoordinatorOptions {
  contractGate: ContractGateFactory;
  /** Makes the contract step's reverse-window closer for one spec (reverse-sync's, wired by the CLI). */
  closeReverseWindow?: (loaded: LoadedSpec) => ReverseWindowCloser;
  logger?: Logger;
}

export async function openCoordinator(loaded: LoadedSpec, options: OpenCoordinatorOptions): Promise<CoordinatorContext> {
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
  const redis = createRedis(spec.infra.redis);
  const contractGate = options.contractGate(loaded, { source, logger });
  const closeReverseWindow = options.closeReverseWindow?.(loaded);
  const coordinator = createCoordinator({
    spec,
    control,
    target,
    redis,
    logger,
    contractGate,
    ...(closeReverseWindow ? { closeReverseWindow } : {}),
  });
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
