/**
 * The comparator's decoding on its own (no stack): Debezium's captured connect-json events
 * (debezium-3.6.0/) rendered to Avro by parity's AvroData-convention writer and read back by the
 * comparator's Avro -> Connect reading give the schemas Debezium wrote; JSON int64 stays exact.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { avroSchemaFromConnect } from '../../connectors/kafka-sink/connect-avro.js';
import type { ConnectSchema } from '../../services/core/connect-schema.js';
import { connectSchemaFromAvro, EventDecoder, type JsonSchema, parseJsonExact } from '../support/debezium-compare.js';

const DIR = fileURLToPath(new URL('./debezium-3.6.0/', import.meta.url));
const events = JSON.parse(readFileSync(`${DIR}all-types.change-events.json`, 'utf8')) as { key: string; value: string | null }[];

/** JsonConverter's schema JSON -> the Connect schema shape parity's writer takes. */
function toConnect(s: JsonSchema): ConnectSchema {
  const type = s.type === 'float' ? 'float32' : s.type === 'double' ? 'float64' : s.type;
  const out: Record<string, unknown> = { type, optional: s.optional ?? false };
  for (const k of ['name', 'version', 'doc', 'parameters', 'default'] as const) if (s[k] !== undefined) out[k] = s[k];
  if (s.fields) out.fields = s.fields.map((f) => ({ name: f.field, schema: toConnect(f) }));
  if (s.items) out.items = toConnect(s.items);
  if (s.keys) out.keys = toConnect(s.keys);
  if (s.values) out.values = toConnect(s.values);
  return out as unknown as ConnectSchema;
}

/** Drops what JsonConverter and AvroData spell differently but mean the same (optional: false is the default). */
function canonical(s: JsonSchema): unknown {
  const { field, ...rest } = s as JsonSchema & { field?: string };
  const out: Record<string, unknown> = { ...rest, optional: s.optional ?? false };
  if (field !== undefined) out.field = field;
  if (s.fields) out.fields = s.fields.map((f) => canonical(f));
  if (s.items) out.items = canonical(s.items);
  if (s.values) out.values = canonical(s.values);
  if (s.keys) out.keys = canonical(s.keys);
  if (typeof out.default === 'number' && s.type === 'int64') out.default = BigInt(out.default);
  return out;
}

describe('comparator decoding', () => {
  it('keeps int64 beyond 2^53 exact when parsing JSON', () => {
    expect(parseJsonExact('{"a":9007199254740993,"b":1.5,"c":3}')).toEqual({ a: 9007199254740993n, b: 1.5, c: 3 });
  });

  it("reads Debezium's row schema back from Avro as Debezium wrote it in connect-json", () => {
    const doc = parseJsonExact(events[0]!.value!) as { schema: JsonSchema };
    const row = doc.schema.fields!.find((f) => f.field === 'after')!;
    const { field: _f, ...rowSchema } = row;
    const avro = avroSchemaFromConnect(toConnect(rowSchema as JsonSchema));
    const back = connectSchemaFromAvro(avro as never);
    expect(canonical(back)).toEqual(canonical(rowSchema as JsonSchema));
  });

  it('decodes a connect-json event: int64 exact, NaN and infinities as numbers, tombstones as null', async () => {
    const decoder = new EventDecoder('connect-json');
    const first = await decoder.decode({
      partition: 0,
      offset: 0n,
      key: Buffer.from(events[0]!.key),
      value: Buffer.from(events[0]!.value!),
      headers: {},
    });
    expect((first.value!.payload as { after: { big: unknown } }).after.big).toBe(9007199254740993n);
    const second = await decoder.decode({
      partition: 0,
      offset: 1n,
      key: Buffer.from(events[1]!.key),
      value: Buffer.from(events[1]!.value!),
      headers: {},
    });
    expect((second.value!.payload as { after: { real4: unknown; dbl: unknown } }).after).toMatchObject({ real4: Infinity, dbl: -Infinity });
    const tombstone = events.findIndex((e) => e.value === null);
    expect(tombstone).toBeGreaterThan(0);
    expect(
      (await decoder.decode({ partition: 0, offset: 2n, key: Buffer.from(events[tombstone]!.key), value: null, headers: {} })).value,
    ).toBeNull();
  });
});
