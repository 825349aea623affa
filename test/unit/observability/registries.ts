/**
 * Each long-running service's metric registry, built the way its process builds it (the same
 * factories, the default Node.js/process metrics included), without starting the service.
 */
import type { Registry } from 'prom-client';
import { backfillMetrics } from '../../../services/backfill/metrics.js';
import { versionerMetrics } from '../../../services/cache-versioner/metrics.js';
import { cdcMetrics } from '../../../services/cdc/metrics.js';
import { registerLockMetrics } from '../../../services/coordinator/lock.js';
import { createMetricsRegistry } from '../../../services/core/metrics.js';
import { reconcilerMetrics } from '../../../services/reconciler/metrics.js';
import { reverseMetrics } from '../../../services/reverse-sync/metrics.js';
import { lockWatchMetrics } from '../../../services/status/lock-metrics.js';

export const SERVICE_REGISTRIES: Record<string, (registry: Registry) => void> = {
  cdc: (r) => void cdcMetrics(r),
  backfill: (r) => void backfillMetrics(r),
  reconcile: (r) => void reconcilerMetrics(r),
  verify: (r) => void reconcilerMetrics(r),
  'cache-versioner': (r) => void versionerMetrics(r),
  // `parity reverse-sync run` (its process names itself `reverse`; the window's verification adds the reconciler's).
  reverse: (r) => {
    reverseMetrics(r);
    reconcilerMetrics(r);
  },
  serve: (r) => {
    registerLockMetrics(r);
    lockWatchMetrics(r);
  },
};

export function serviceRegistry(service: string): Registry {
  const registry = createMetricsRegistry({ service });
  SERVICE_REGISTRIES[service]!(registry);
  return registry;
}

/** Every metric family any service registers: name -> type and label names (the `service` default label left out). */
export function registeredFamilies(): Map<string, { type: string; labels: Set<string> }> {
  const families = new Map<string, { type: string; labels: Set<string> }>();
  for (const service of Object.keys(SERVICE_REGISTRIES)) {
    for (const metric of serviceRegistry(service).getMetricsAsArray()) {
      const m = metric as unknown as { name: string; type: string; labelNames?: string[] };
      const entry = families.get(m.name) ?? { type: m.type, labels: new Set<string>() };
      for (const l of m.labelNames ?? []) entry.labels.add(l);
      families.set(m.name, entry);
    }
  }
  return families;
}
