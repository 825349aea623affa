import { Registry, collectDefaultMetrics, Counter, Gauge, Histogram } from 'prom-client';

export { Registry, Counter, Gauge, Histogram };

/**
 * prom-client's gauges of active handles, requests and resources end in `_total`, which the
 * Prometheus linters (`promtool check metrics`) reserve for counters; they are left out.
 */
const LINT_FAILING_DEFAULTS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

/**
 * One registry per process (or per test), injected into every component. Names follow Prometheus
 * practice: `parity_` prefix, base units, `_total` counters, low-cardinality labels only. The
 * default Node.js and process metrics keep their standard names (`process_cpu_seconds_total`,
 * `nodejs_heap_size_used_bytes`, ...), so stock dashboards and alerts work on them.
 */
export function createMetricsRegistry(options: { defaultMetrics?: boolean; service?: string } = {}): Registry {
  const registry = new Registry();
  if (options.service) registry.setDefaultLabels({ service: options.service });
  if (options.defaultMetrics ?? true) {
    collectDefaultMetrics({ register: registry });
    for (const name of LINT_FAILING_DEFAULTS) registry.removeSingleMetric(name);
  }
  return registry;
}

/** Returns the metric registered under `name`, creating it once; lets components share a registry safely. */
export function getOrCreate<T>(registry: Registry, name: string, create: () => T): T {
  const existing = registry.getSingleMetric(name);
  return (existing as T | undefined) ?? create();
}

export function counter(registry: Registry, name: string, help: string, labelNames: string[] = []): Counter<string> {
  return getOrCreate(registry, name, () => new Counter({ name, help, labelNames, registers: [registry] }));
}

export function gauge(registry: Registry, name: string, help: string, labelNames: string[] = []): Gauge<string> {
  return getOrCreate(registry, name, () => new Gauge({ name, help, labelNames, registers: [registry] }));
}

export function histogram(registry: Registry, name: string, help: string, buckets: number[], labelNames: string[] = []): Histogram<string> {
  return getOrCreate(registry, name, () => new Histogram({ name, help, labelNames, buckets, registers: [registry] }));
}

/** Latency buckets in seconds, 1 ms to 10 s. */
export const LATENCY_BUCKETS_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
