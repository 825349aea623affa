/**
 * The spec of the backfill benchmarks (bench:backfill, bench:backfill-cpu): a same-table backfill of
 * the worked example's mapping on the local stack, `backfill` an indented YAML block placed under
 * `backfill:` (none: the spec's defaults). `currency` is the constant the mapping writes.
 */
import { parseSpec, type Spec } from '../../services/core/spec.js';

export function backfillBenchSpec(o: { name: string; url: string; table: string; currency?: string; backfill?: string }): Spec {
  const text = `apiVersion: parity/v1
name: ${o.name}
source: { database: "${o.url}", table: ${o.table} }
target: { kind: same-table }
key: [id]
mapping:
  total_amount_minor: total_amount::bigint
  currency: "'${o.currency ?? 'USD'}'::text"
infra:
  kafka: { brokers: ["127.0.0.1:19092"] }
  registry: { url: "http://127.0.0.1:18081/apis/ccompat/v7" }
  redis: { url: "redis://127.0.0.1:16379" }
cdc: { slot: bench_slot, publication: bench_pub, topicPrefix: bench }
${o.backfill ? `backfill:\n${o.backfill}` : ''}`;
  return parseSpec(text, '<bench>').spec;
}
