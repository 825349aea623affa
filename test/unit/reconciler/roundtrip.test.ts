import { describe, expect, test } from 'vitest';
import { stringify } from 'yaml';
import { parseSpec } from '../../../services/core/spec.js';
import { looksSecret, roundtripSql, samplePercent } from '../../../services/reconciler/roundtrip.js';

const spec = parseSpec(
  stringify({
    apiVersion: 'parity/v1',
    name: 'rt-unit',
    source: { database: 'postgres://u@127.0.0.1:5432/db', schema: 'Shop', table: 'or"ders' },
    target: { kind: 'same-table' },
    key: ['id'],
    mapping: { total_amount_minor: 'total_amount::bigint', currency: "'USD'" },
    reverse: { mapping: { total_amount: 'total_amount_minor::integer' }, representable: "currency = 'USD'" },
    infra: { kafka: { brokers: ['127.0.0.1:9092'] }, registry: { url: 'http://127.0.0.1:8081' }, redis: { url: 'redis://127.0.0.1:6379' } },
    cdc: { slot: 'rt', publication: 'rt', topicPrefix: 'rt' },
  }),
).spec;

describe('round trip SQL', () => {
  const columns = [
    { name: 'id', type: 'integer' },
    { name: 'total_amount', type: 'integer' },
    { name: 'Note', type: 'text' },
    { name: 'total_amount_minor', type: 'bigint' },
    { name: 'currency', type: 'text' },
  ];

  test('identifiers are escaped; the new row leaves out the old column and keeps the untouched ones', () => {
    const sql = roundtripSql(spec, columns, { limit: 50, percent: null });
    expect(sql).toContain('FROM "Shop"."or""ders" LIMIT 50');
    expect(sql).not.toContain('TABLESAMPLE');
    const newRow = /n AS \(\n {2}SELECT (.*) FROM s\n/.exec(sql)?.[1] ?? '';
    expect(newRow).toContain('s."Note" AS "Note"');
    expect(newRow).toContain('(total_amount::bigint) AS "total_amount_minor"');
    expect(newRow).not.toMatch(/AS "total_amount"[, ]/);
    // The reverse value is cast to the old column's type and compared as its text.
    expect(sql).toContain('((total_amount_minor::integer)::integer)::text AS parity_rt_new_0');
    expect(sql).toContain("coalesce((currency = 'USD'), false) AS parity_rt_rep");
    expect(roundtripSql(spec, columns, { limit: 50, percent: 2.5 })).toContain('TABLESAMPLE BERNOULLI (2.5) LIMIT 50');
  });

  test('samples only tables well above the limit', () => {
    expect(samplePercent(-1, 100)).toBeNull();
    expect(samplePercent(200, 100)).toBeNull();
    expect(samplePercent(20_000, 100)).toBe(1);
    expect(samplePercent(1e9, 10_000)).toBeCloseTo(0.002);
  });

  test('secret-looking column names', () => {
    for (const c of ['password', 'api_token', 'apiKey', 'client_secret', 'card_number', 'pin']) expect(looksSecret(c)).toBe(true);
    for (const c of ['total_amount', 'currency', 'note', 'id', 'spinner']) expect(looksSecret(c)).toBe(false);
  });
});
