/**
 * The conformance comparator: reads two change topics (Debezium's and parity's, or two Debezium
 * connectors' for the comparator's own proof), decodes each message to Kafka Connect's model —
 * connect-json (`{schema, payload}`, JsonConverter with schemas) or Avro in the Confluent wire format
 * through the registry's ccompat API, turned back into Connect schemas the way Confluent's AvroData
 * reads `connect.*` properties — pairs events by key and order, and lists every difference of key
 * and value schemas (types, optionality, names, versions, parameters, defaults, docs) and of logical
 * values. A difference is allowed only by a rule with a reason; the rest fail the test.
 *
 * Values are compared in JsonConverter's rendering: int64 as bigint (no precision lost), bytes and
 * Decimal as base64, structs as objects, so a connect-json side and an Avro side compare directly.
 */
import avro from 'avsc';
import { createKafka } from '../../services/core/clients.js';

/** A Connect schema in JsonConverter's shape (`field` names a struct's member). */
export interface JsonSchema {
  type: string;
  optional?: boolean;
  name?: string;
  version?: number;
  doc?: string;
  parameters?: Record<string, string>;
  default?: unknown;
  fields?: (JsonSchema & { field: string })[];
  items?: JsonSchema;
  keys?: JsonSchema;
  values?: JsonSchema;
}

export interface Part {
  schema: JsonSchema | null;
  payload: unknown;
}

export interface RawMessage {
  partition: number;
  offset: bigint;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, string>;
}

export interface DecodedEvent {
  /** partition/offset in its topic, for reports. */
  at: string;
  key: Part | null;
  /** null: a tombstone. */
  value: Part | null;
  headers: Record<string, string>;
}

export type Format = 'connect-json' | 'avro';

/** JSON.parse keeping integers beyond 2^53 exact (as bigint): int64 columns hold such values. */
export function parseJsonExact(text: string): unknown {
  return JSON.parse(text, (_key, value: unknown, context?: { source?: string }) =>
    typeof value === 'number' &&
    Number.isInteger(value) &&
    !Number.isSafeInteger(value) &&
    context?.source &&
    /^-?\d+$/.test(context.source)
      ? BigInt(context.source)
      : value,
  );
}

/** Reads every message of `topic` from the beginning until `count` messages came or nothing new arrived for `idleMs`. */
export async function readRawTopic(
  brokers: string[],
  topic: string,
  options: { minMessages?: number; idleMs?: number; timeoutMs?: number } = {},
): Promise<RawMessage[]> {
  const { minMessages = 1, idleMs = 5_000, timeoutMs = 120_000 } = options;
  const consumer = createKafka(brokers, { clientId: 'parity-conformance' }).consumer({
    groupId: `conformance-${topic}-${Math.random().toString(16).slice(2)}`,
    maxWaitMs: 200,
  });
  const out: RawMessage[] = [];
  let failure: unknown = null;
  const deadline = Date.now() + timeoutMs;
  try {
    // The topic appears with the connector's first message: until then, ask again.
    let stream: Awaited<ReturnType<typeof consumer.consume>>;
    for (;;) {
      try {
        stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false });
        break;
      } catch (err) {
        if (!/unknown topic/i.test(String((err as Error).message)) || Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    stream.on('error', (err) => (failure ??= err));
    const reading = (async () => {
      for await (const m of stream) {
        const headers: Record<string, string> = {};
        for (const [k, v] of m.headers ?? new Map()) headers[String(k)] = Buffer.isBuffer(v) ? v.toString('utf8') : String(v);
        out.push({
          partition: m.partition,
          offset: BigInt(m.offset),
          key: m.key && m.key.length > 0 ? Buffer.from(m.key) : null,
          value: m.value && m.value.length > 0 ? Buffer.from(m.value) : null,
          headers,
        });
      }
    })().catch((err: unknown) => (failure ??= err));
    let seen = -1;
    let lastGrowth = Date.now();
    while (Date.now() < deadline && !failure) {
      if (out.length !== seen) {
        seen = out.length;
        lastGrowth = Date.now();
      } else if (out.length >= minMessages && Date.now() - lastGrowth > idleMs) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    await stream.close().catch(() => undefined);
    await reading;
    if (failure) throw failure;
    return out.sort((a, b) => a.partition - b.partition || (a.offset < b.offset ? -1 : a.offset > b.offset ? 1 : 0));
  } finally {
    await consumer.close(true).catch(() => undefined);
  }
}

// --- Avro -> Connect (AvroData's reading of connect.* properties) ---------------------------------

type AvroType = string | AvroType[] | Record<string, unknown>;

const AVRO_PRIMITIVE: Record<string, string> = {
  int: 'int32',
  long: 'int64',
  float: 'float',
  double: 'double',
  boolean: 'boolean',
  string: 'string',
  bytes: 'bytes',
};

/** Base64 of a default written as Avro JSON bytes (ISO-8859-1 text). */
const latin1Base64 = (s: string) => Buffer.from(s, 'latin1').toString('base64');

/** Connect schema of an Avro type; `named` resolves references to records seen before. */
export function connectSchemaFromAvro(type: AvroType, named: Map<string, Record<string, unknown>> = new Map(), namespace = ''): JsonSchema {
  if (Array.isArray(type)) {
    const branches = type.filter((t) => t !== 'null');
    if (branches.length === 1 && branches.length < type.length)
      return { ...connectSchemaFromAvro(branches[0]!, named, namespace), optional: true };
    // A union Connect cannot say (AvroData makes it a struct io.confluent.connect.avro.Union): shown as such.
    return {
      type: 'struct',
      name: 'io.confluent.connect.avro.Union',
      optional: type.includes('null'),
      fields: branches.map((b) => ({
        ...connectSchemaFromAvro(b, named, namespace),
        field: typeof b === 'string' ? b : String((b as { type: unknown }).type),
      })),
    };
  }
  if (typeof type === 'string') {
    if (AVRO_PRIMITIVE[type]) return { type: AVRO_PRIMITIVE[type]!, optional: false };
    const ref = named.get(type) ?? named.get(`${namespace}.${type}`);
    if (!ref) throw new Error(`Avro type ${type} is neither primitive nor a record seen before`);
    return connectSchemaFromAvro(ref, named, namespace);
  }
  const t = type as Record<string, unknown>;
  const props: JsonSchema = { type: '', optional: false };
  const meta = (s: JsonSchema): JsonSchema => {
    if (typeof t['connect.name'] === 'string') s.name = t['connect.name'] as string;
    if (t['connect.version'] !== undefined) s.version = Number(t['connect.version']);
    if (typeof t['connect.doc'] === 'string') s.doc = t['connect.doc'] as string;
    if (t['connect.parameters']) s.parameters = { ...(t['connect.parameters'] as Record<string, string>) };
    if (t['connect.default'] !== undefined) s.default = t['connect.default'];
    return s;
  };
  if (t.type === 'record') {
    const full =
      String(t.name).includes('.') || !(t.namespace ?? namespace)
        ? String(t.name)
        : `${String(t.namespace ?? namespace)}.${String(t.name)}`;
    named.set(full, t);
    const ns = full.includes('.') ? full.slice(0, full.lastIndexOf('.')) : '';
    const fields = (t.fields as { name: string; type: AvroType; default?: unknown; doc?: string }[]).map((f) => {
      const s = connectSchemaFromAvro(f.type, named, ns);
      // AvroData: a field's connect.default lives on its type; a plain Avro default counts when no connect.default does.
      if (s.default === undefined && f.default !== undefined && f.default !== null) s.default = f.default;
      return { ...s, field: f.name };
    });
    const s = meta({ ...props, type: 'struct', fields });
    if (s.name === undefined && full !== 'io.confluent.connect.avro.ConnectDefault') s.name = full;
    return s;
  }
  if (t.type === 'array') return meta({ ...props, type: 'array', items: connectSchemaFromAvro(t.items as AvroType, named, namespace) });
  if (t.type === 'map')
    return meta({
      ...props,
      type: 'map',
      keys: { type: 'string', optional: false },
      values: connectSchemaFromAvro(t.values as AvroType, named, namespace),
    });
  if (t.type === 'enum') return meta({ ...props, type: 'string' });
  if (t.type === 'fixed') return meta({ ...props, type: 'bytes' });
  const base = connectSchemaFromAvro(String(t.type), named, namespace);
  const s = meta({ ...props, type: base.type });
  const connectType = t['connect.type'];
  if (connectType === 'int8' || connectType === 'int16') s.type = connectType;
  if (t.logicalType === 'decimal' && s.name === undefined) {
    s.name = 'org.apache.kafka.connect.data.Decimal';
    s.version ??= 1;
    s.parameters = { scale: String(t.scale ?? 0), 'connect.decimal.precision': String(t.precision), ...(s.parameters ?? {}) };
  }
  return s;
}

/** A decoded value (Avro's, or JsonConverter's payload) in one rendering for `schema`: int64 as bigint, bytes as base64, float as number. */
function jsonValue(schema: JsonSchema, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  switch (schema.type) {
    case 'int64':
      return typeof value === 'bigint' ? value : BigInt(value as number);
    case 'float': {
      // JsonConverter writes NaN and the infinities as strings ("NaN", "Infinity"), and a float32 as
      // Java's shortest text of it (3.4028235E38); Avro hands the float32 itself: compare float32s.
      return Math.fround(typeof value === 'string' ? Number(value) : (value as number));
    }
    case 'double':
      return typeof value === 'string' ? Number(value) : value;
    case 'bytes':
      return Buffer.isBuffer(value) ? value.toString('base64') : value;
    case 'struct': {
      if (schema.name === 'io.confluent.connect.avro.Union') return value;
      const rec = value as Record<string, unknown>;
      return Object.fromEntries(schema.fields!.map((f) => [f.field, jsonValue(f, rec[f.field])]));
    }
    case 'array':
      return (value as unknown[]).map((v) => jsonValue(schema.items!, v));
    case 'map':
      return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, jsonValue(schema.values!, v)]));
    default:
      return value;
  }
}

/** Defaults in JsonConverter's rendering (bytes and Decimal defaults as base64, int64 as bigint). */
function normalizeDefaults(schema: JsonSchema, fromAvro: boolean): JsonSchema {
  const out: JsonSchema = { ...schema };
  if (out.default !== undefined && out.default !== null) {
    if (out.type === 'int64') out.default = BigInt(out.default as number);
    else if (out.type === 'bytes' && fromAvro && typeof out.default === 'string') out.default = latin1Base64(out.default);
  }
  if (out.fields) out.fields = out.fields.map((f) => ({ ...normalizeDefaults(f, fromAvro), field: f.field }));
  if (out.items) out.items = normalizeDefaults(out.items, fromAvro);
  if (out.values) out.values = normalizeDefaults(out.values, fromAvro);
  if (out.keys) out.keys = normalizeDefaults(out.keys, fromAvro);
  return out;
}

const BIGINT_LONG = avro.types.LongType.__with({
  fromBuffer: (buf: Buffer) => buf.readBigInt64LE(),
  toBuffer: (n: bigint) => {
    const buf = Buffer.alloc(8);
    buf.writeBigInt64LE(n);
    return buf;
  },
  fromJSON: (v: unknown) => BigInt(v as number),
  toJSON: (n: bigint) => Number(n),
  isValid: (n: unknown) => typeof n === 'bigint',
  compare: (a: bigint, b: bigint) => (a === b ? 0 : a < b ? -1 : 1),
});

/** Decodes messages of one topic: connect-json, or Avro (Confluent wire format) through the registry's ccompat API. */
export class EventDecoder {
  private readonly avroSchemas = new Map<number, Promise<{ type: avro.Type; connect: JsonSchema }>>();

  constructor(
    private readonly format: Format,
    /** The registry's Confluent-compatible base URL (…/apis/ccompat/v7); Avro only. */
    private readonly registryUrl?: string,
  ) {}

  private avroSchema(id: number): Promise<{ type: avro.Type; connect: JsonSchema }> {
    let found = this.avroSchemas.get(id);
    if (!found) {
      found = (async () => {
        const res = await fetch(`${this.registryUrl}/schemas/ids/${id}`);
        if (!res.ok) throw new Error(`registry: schema id ${id}: HTTP ${res.status} ${await res.text()}`);
        const text = ((await res.json()) as { schema: string }).schema;
        const parsed = JSON.parse(text) as AvroType;
        const type = avro.Type.forSchema(
          parsed as avro.Schema,
          {
            wrapUnions: 'auto',
            typeHook: (attrs: unknown) => (attrs === 'long' || (attrs as { type?: unknown }).type === 'long' ? BIGINT_LONG : undefined),
          } as unknown as avro.ForSchemaOptions,
        );
        return { type, connect: normalizeDefaults(connectSchemaFromAvro(parsed), true) };
      })();
      this.avroSchemas.set(id, found);
    }
    return found;
  }

  async part(bytes: Buffer | null): Promise<Part | null> {
    if (bytes === null) return null;
    if (this.format === 'connect-json') {
      const doc = parseJsonExact(bytes.toString('utf8')) as Part;
      if (!doc.schema) return { schema: null, payload: doc.payload };
      return { schema: normalizeDefaults(doc.schema, false), payload: jsonValue(doc.schema, doc.payload) };
    }
    if (bytes[0] !== 0 || bytes.length < 5) throw new Error(`not the Confluent wire format (magic byte ${bytes[0]})`);
    const { type, connect } = await this.avroSchema(bytes.readInt32BE(1));
    return { schema: connect, payload: jsonValue(connect, type.fromBuffer(bytes.subarray(5))) };
  }

  async decode(m: RawMessage): Promise<DecodedEvent> {
    return { at: `${m.partition}@${m.offset}`, key: await this.part(m.key), value: await this.part(m.value), headers: m.headers };
  }
}

// --- pairing and comparing -------------------------------------------------------------------------

export interface Difference {
  /** Which pair: `<key>#<n>` (the n-th event of that key on both sides). */
  event: string;
  /** Where: `key.schema…`, `value.payload.after.num_fixed`, … */
  path: string;
  theirs: unknown;
  ours: unknown;
  /** The rule that allowed it, if one did. */
  allowedBy?: string;
}

/** A difference that is allowed, and why. `path` matches the whole path (a RegExp), `when` narrows it to some events. */
export interface AllowedDifference {
  path: RegExp;
  reason: string;
  when?: (theirs: DecodedEvent, ours: DecodedEvent) => boolean;
}

export interface Comparison {
  pairs: number;
  /** Events of one side with no counterpart (per key, beyond the other side's count). */
  unpaired: { side: 'theirs' | 'ours'; event: string; op: unknown }[];
  differences: Difference[];
}

const show = (v: unknown): string =>
  JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : typeof x === 'number' && !Number.isFinite(x) ? String(x) : x)) ??
  'undefined';

/** Replaces each side's topic prefix in schema names (`<prefix>.public.t.Value`) with one placeholder. */
function renamePrefix(schema: JsonSchema | null, prefix: string): JsonSchema | null {
  if (!schema) return schema;
  const out: JsonSchema = { ...schema };
  if (out.name?.startsWith(`${prefix}.`)) out.name = `<prefix>${out.name.slice(prefix.length)}`;
  if (out.fields) out.fields = out.fields.map((f) => ({ ...(renamePrefix(f, prefix) as JsonSchema), field: f.field }));
  if (out.items) out.items = renamePrefix(out.items, prefix)!;
  return out;
}

function walk(path: string, theirs: unknown, ours: unknown, out: { path: string; theirs: unknown; ours: unknown }[]): void {
  if (theirs === ours) return;
  if (typeof theirs === 'number' && typeof ours === 'number' && Object.is(theirs, ours)) return;
  const isObj = (v: unknown) => v !== null && typeof v === 'object';
  if (Array.isArray(theirs) && Array.isArray(ours)) {
    // Struct fields are compared by their `field` name, other arrays by position.
    const named = theirs.every((x) => isObj(x) && 'field' in (x as object)) && ours.every((x) => isObj(x) && 'field' in (x as object));
    if (named && (theirs.length > 0 || ours.length > 0)) {
      const t = new Map(theirs.map((x) => [(x as { field: string }).field, x]));
      const o = new Map(ours.map((x) => [(x as { field: string }).field, x]));
      const order = [...t.keys(), ...[...o.keys()].filter((k) => !t.has(k))];
      const tOrder = [...t.keys()].filter((k) => o.has(k));
      const oOrder = [...o.keys()].filter((k) => t.has(k));
      if (tOrder.join() !== oOrder.join()) out.push({ path: `${path}.<field order>`, theirs: tOrder, ours: oOrder });
      for (const k of order) walk(`${path}.${k}`, t.get(k), o.get(k), out);
      return;
    }
    for (let i = 0; i < Math.max(theirs.length, ours.length); i++) walk(`${path}[${i}]`, theirs[i], ours[i], out);
    return;
  }
  if (isObj(theirs) && isObj(ours) && !Array.isArray(theirs) && !Array.isArray(ours)) {
    const t = theirs as Record<string, unknown>;
    const o = ours as Record<string, unknown>;
    for (const k of new Set([...Object.keys(t), ...Object.keys(o)])) {
      if (k === 'field') continue;
      walk(`${path}.${k}`, t[k], o[k], out);
    }
    return;
  }
  out.push({ path, theirs, ours });
}

/** Compares schemas as Connect sees them: `optional: false` is the default and the same as absent. */
function canonicalSchema(schema: JsonSchema | null): unknown {
  if (!schema) return schema;
  const out: Record<string, unknown> = { ...schema, optional: schema.optional ?? false };
  if (schema.fields) out.fields = schema.fields.map((f) => ({ ...(canonicalSchema(f) as object), field: f.field }));
  if (schema.items) out.items = canonicalSchema(schema.items);
  if (schema.keys) out.keys = canonicalSchema(schema.keys);
  if (schema.values) out.values = canonicalSchema(schema.values);
  return out;
}

const keyText = (e: DecodedEvent) => show(e.key?.payload ?? null);

/**
 * Pairs the two sides' events by key and, within a key, by order; compares each pair's key and
 * value schemas and payloads (and whether it is a tombstone). Topic prefixes in schema names are
 * replaced by one placeholder first (each side names its own topics).
 */
export function compareTopics(
  theirs: { events: DecodedEvent[]; prefix: string },
  ours: { events: DecodedEvent[]; prefix: string },
  allowed: AllowedDifference[],
): Comparison {
  const byKey = (events: DecodedEvent[]) => {
    const m = new Map<string, DecodedEvent[]>();
    for (const e of events) m.set(keyText(e), [...(m.get(keyText(e)) ?? []), e]);
    return m;
  };
  const t = byKey(theirs.events);
  const o = byKey(ours.events);
  const result: Comparison = { pairs: 0, unpaired: [], differences: [] };
  for (const key of new Set([...t.keys(), ...o.keys()])) {
    const te = t.get(key) ?? [];
    const oe = o.get(key) ?? [];
    for (let i = 0; i < Math.max(te.length, oe.length); i++) {
      const a = te[i];
      const b = oe[i];
      const event = `${key}#${i}`;
      if (!a || !b) {
        const only = (a ?? b)!;
        result.unpaired.push({
          side: a ? 'theirs' : 'ours',
          event,
          op: (only.value?.payload as { op?: unknown } | null)?.op ?? 'tombstone',
        });
        continue;
      }
      result.pairs++;
      const found: { path: string; theirs: unknown; ours: unknown }[] = [];
      walk(
        'key.schema',
        canonicalSchema(renamePrefix(a.key?.schema ?? null, theirs.prefix)),
        canonicalSchema(renamePrefix(b.key?.schema ?? null, ours.prefix)),
        found,
      );
      walk('key.payload', a.key?.payload ?? null, b.key?.payload ?? null, found);
      if ((a.value === null) !== (b.value === null))
        found.push({ path: 'value', theirs: a.value === null ? 'tombstone' : 'event', ours: b.value === null ? 'tombstone' : 'event' });
      else if (a.value && b.value) {
        walk(
          'value.schema',
          canonicalSchema(renamePrefix(a.value.schema, theirs.prefix)),
          canonicalSchema(renamePrefix(b.value.schema, ours.prefix)),
          found,
        );
        walk('value.payload', a.value.payload, b.value.payload, found);
      }
      // Debezium's own headers (a key change's __debezium.oldkey / newkey); parity's own headers are its business.
      for (const h of new Set([...Object.keys(a.headers), ...Object.keys(b.headers)].filter((n) => n.startsWith('__debezium'))))
        walk(`headers.${h}`, a.headers[h], b.headers[h], found);
      for (const d of found) {
        const rule = allowed.find((r) => r.path.test(d.path) && (!r.when || r.when(a, b)));
        result.differences.push({ event, ...d, ...(rule ? { allowedBy: rule.reason } : {}) });
      }
    }
  }
  return result;
}

/** The differences no rule allows, one line each (for a failing assertion's message). */
export function report(c: Comparison, onlyDisallowed = true): string {
  const lines = [`${c.pairs} pairs compared`];
  for (const u of c.unpaired) lines.push(`unpaired (${u.side} only): ${u.event} op=${show(u.op)}`);
  for (const d of c.differences.filter((x) => !onlyDisallowed || !x.allowedBy))
    lines.push(
      `${d.event} ${d.path}: debezium ${show(d.theirs)} / other ${show(d.ours)}${d.allowedBy ? `  [allowed: ${d.allowedBy}]` : ''}`,
    );
  return lines.join('\n');
}
