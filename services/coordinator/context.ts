/**
 * Opens what the coordinator commands need for one spec (control and target pools, Redis) and
 * closes it again. Only the CLI layer calls this; the coordinator itself receives its clients.
 */
import type pg from 'pg';
import type { Redis } from 'ioredis';
import { createPgPool, createRedis } from '../core/clients.js';
import { createLogger, type Logger } from '../core/log.js';
import { controlDatabase, targetDatabase, type Spec } from '../core/spec.js';
import { createCoordinator, type Coordinator } from './coordinator.js';

export interface CoordinatorContext {
  coordinator: Coordinator;
  control: pg.Pool;
  target: pg.Pool;
  redis: Redis;
  logger: Logger;
  close(): Promise<void>;
}

export function openCoordinator(spec: Spec, options: { logger?: Logger } = {}): CoordinatorContext {
  const logger = options.logger ?? createLogger({ name: 'coordinator', level: process.env.PARITY_LOG_LEVEL ?? 'warn' });
  const controlUrl = controlDatabase(spec);
  const targetUrl = targetDatabase(spec);
  const control = createPgPool(controlUrl, { applicationName: 'parity-coordinator', max: 3 });
  const target = targetUrl === controlUrl ? control : createPgPool(targetUrl, { applicationName: 'parity-coordinator', max: 3 });
  const redis = createRedis(spec.infra.redis.url);
  // Connection errors surface on the command that needs Redis; the event must not crash the CLI.
  redis.on('error', () => undefined);
  const coordinator = createCoordinator({ spec, control, target, redis, logger });
  return {
    coordinator,
    control,
    target,
    redis,
    logger,
    async close() {
      redis.disconnect();
      await control.end().catch(() => undefined);
      if (target !== control) await target.end().catch(() => undefined);
    },
  };
}
