import { randomBytes } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import { ParityError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { createAvroDatumReader, type AvroDatumReader } from './avro-datum.js';
import type { Finding } from './findings.js';
import { checkJsonSchemaBackward } from './json-schema-compat.js';
import { loadJsonSchema } from './json-schema-model.js';
import type { CcompatClient, RegistrySchemaType } from './registry-client.js';

/**
 * Live-event checks during cutover: sample the most recent events of a topic, decode each with the
 * writer schema its Confluent wire-format header names, and check that every consumer's reader schema
 * can read it. Counts go per consumer and per writer schema version, so a report says "billing cannot
 * read the 412 events written with version 3" rather than "something is incompatible".
 *
 * Avro events are read datum by datum through schema resolution (a consumer fails only on events that
 * hit the gap). JSON Schema events are judged per writer version with the local checker, since a JSON
 * consumer reads whatever its schema accepts.
 */

/** A downstream consumer and the reader schema (text) it is built with. */
export interface LiveConsumer {
  name: string;
  readerSchema: string;
}

/** What the analysis needs to know about a writer schema id. */
export interface WriterSchema {
  schema: string;
  schemaType: RegistrySchemaType;
  /** The subject version it is registered as, when known. */
  version?: number;
}

/** Looks up a writer schema by id; undefined when the registry does not know it. */
export type WriterLookup = (schemaId: number) => Promise<WriterSchema | undefined>;

export interface VersionCount {
  schemaId: number;
  version?: number;
  events: number;
}

export interface ConsumerVersionCount extends VersionCount {
  readable: number;
  failed: number;
  /** The first failure's reason, e.g. "No match for REFUNDED". */
  firstError?: string;
}

export interface ConsumerReport {
  consumer: string;
  readable: number;
  failed: number;
  byVersion: ConsumerVersionCount[];
}

/** What a topic's sampled events say about each consumer and each writer version. */
export interface LiveReport {
  topic: string;
  /** Events looked at (tombstones included). */
  sampled: number;
  /** Deletes with a null value: nothing to read, not counted against anyone. */
  tombstones: number;
  /** false when the sample timed out before reaching the end of every partition. */
  complete: boolean;
  byVersion: VersionCount[];
  unknownIds: { schemaId: number; events: number }[];
  notWireFormat: number;
  undecodable: { schemaId: number; version?: number; events: number; firstError: string }[];
  consumers: ConsumerReport[];
  findings: Finding[];
}

const MAGIC_BYTE = 0;

/** Splits a Confluent wire-format message: magic byte 0, 4-byte big-endian schema id, payload. */
export function splitWireFormat(value: Buffer): { schemaId: number; payload: Buffer } | undefined {
  if (value.length < 5 || value.readUInt8(0) !== MAGIC_BYTE) return undefined;
  return { schemaId: value.readInt32BE(1), payload: value.subarray(5) };
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Per (consumer, writer id): how that consumer reads one event, or why it cannot. */
type EventReader = (payload: Buffer) => void;

function readerFor(consumer: LiveConsumer, writer: WriterSchema): EventReader {
  if (writer.schemaType === 'AVRO') {
    const datum: AvroDatumReader = createAvroDatumReader(consumer.readerSchema, writer.schema);
    return (payload) => void datum.read(payload);
  }
  if (writer.schemaType === 'JSON') {
    const problems = checkJsonSchemaBackward(loadJsonSchema(consumer.readerSchema), loadJsonSchema(writer.schema));
    const reason = problems.length > 0 ? `${problems[0]?.rule} at ${problems[0]?.location}` : undefined;
    return () => {
      if (reason) throw new Error(reason);
    };
  }
  return () => {
    throw new Error(`${writer.schemaType} events cannot be checked yet`);
  };
}

/** Decodes with the writer schema alone: separates corrupt events from events a consumer cannot read. */
function writerDecoder(writer: WriterSchema): (payload: Buffer) => void {
  if (writer.schemaType === 'AVRO') {
    const self = createAvroDatumReader(writer.schema, writer.schema);
    return (payload) => void self.read(payload);
  }
  if (writer.schemaType === 'JSON') return (payload) => void JSON.parse(payload.toString('utf8'));
  return () => undefined;
}

/**
 * Analyses sampled event values (null = tombstone). Pure apart from `lookup`, so it is tested without
 * Kafka. Consumer reader schemas are validated up front: a broken one is PARITY_BAD_INPUT.
 */
export async function analyzeEvents(topic: string, values: readonly (Buffer | null)[], lookup: WriterLookup, consumers: readonly LiveConsumer[], complete = true): Promise<LiveReport> {
  for (const c of consumers) {
    try {
      // The type is not known until a writer id is seen; a reader must at least be valid JSON.
      JSON.parse(c.readerSchema);
    } catch (err) {
      throw new ParityError('PARITY_BAD_INPUT', `reader schema of consumer ${c.name} is not valid JSON: ${describe(err)}`, { cause: err });
    }
  }
  const writers = new Map<number, WriterSchema | undefined>();
  const decoders = new Map<number, (p: Buffer) => void>();
  const readers = new Map<string, EventReader | Error>();
  const byVersion = new Map<number, VersionCount>();
  const unknown = new Map<number, number>();
  const undecodable = new Map<number, { events: number; firstError: string }>();
  const perConsumer = new Map<string, Map<number, ConsumerVersionCount>>(consumers.map((c) => [c.name, new Map()]));
  let tombstones = 0;
  let notWireFormat = 0;

  for (const value of values) {
    if (value === null) {
      tombstones++;
      continue;
    }
    const framed = splitWireFormat(value);
    if (!framed) {
      notWireFormat++;
      continue;
    }
    const { schemaId, payload } = framed;
    if (!writers.has(schemaId)) writers.set(schemaId, await lookup(schemaId));
    const writer = writers.get(schemaId);
    if (!writer) {
      unknown.set(schemaId, (unknown.get(schemaId) ?? 0) + 1);
      continue;
    }
    const count = byVersion.get(schemaId) ?? { schemaId, ...(writer.version !== undefined ? { version: writer.version } : {}), events: 0 };
    byVersion.set(schemaId, count);
    count.events++;

    let decode = decoders.get(schemaId);
    if (!decode) {
      decode = writerDecoder(writer);
      decoders.set(schemaId, decode);
    }
    try {
      decode(payload);
    } catch (err) {
      const u = undecodable.get(schemaId) ?? { events: 0, firstError: describe(err) };
      u.events++;
      undecodable.set(schemaId, u);
      continue;
    }

    for (const consumer of consumers) {
      const key = `${consumer.name}\u0000${schemaId}`;
      let read = readers.get(key);
      if (!read) {
        try {
          read = readerFor(consumer, writer);
        } catch (err) {
          // A reader schema that cannot even be paired with this writer (e.g. a parse error) fails every event.
          read = err instanceof Error ? err : new Error(String(err));
        }
        readers.set(key, read);
      }
      const counts = perConsumer.get(consumer.name) as Map<number, ConsumerVersionCount>;
      const c = counts.get(schemaId) ?? { schemaId, ...(writer.version !== undefined ? { version: writer.version } : {}), events: 0, readable: 0, failed: 0 };
      counts.set(schemaId, c);
      c.events++;
      try {
        if (read instanceof Error) throw read;
        read(payload);
        c.readable++;
      } catch (err) {
        c.failed++;
        c.firstError ??= describe(err);
      }
    }
  }

  const bySchema = (a: { schemaId: number }, b: { schemaId: number }): number => a.schemaId - b.schemaId;
  const consumerReports: ConsumerReport[] = consumers.map((c) => {
    const rows = [...(perConsumer.get(c.name)?.values() ?? [])].sort(bySchema);
    return { consumer: c.name, readable: rows.reduce((n, r) => n + r.readable, 0), failed: rows.reduce((n, r) => n + r.failed, 0), byVersion: rows };
  });

  const findings: Finding[] = [];
  for (const [schemaId, events] of unknown) {
    findings.push({ kind: 'unknown-schema-id', topic, message: `${events} event(s) on ${topic} carry schema id ${schemaId}, which the registry does not know`, details: { schemaId, events } });
  }
  if (notWireFormat > 0) {
    findings.push({ kind: 'not-wire-format', topic, message: `${notWireFormat} event(s) on ${topic} are not in the Confluent wire format (magic byte 0 + schema id)`, details: { events: notWireFormat } });
  }
  for (const [schemaId, u] of undecodable) {
    const version = writers.get(schemaId)?.version;
    findings.push({ kind: 'undecodable', topic, message: `${u.events} event(s) on ${topic} do not decode with their own writer schema id ${schemaId}: ${u.firstError}`, details: { schemaId, version, ...u } });
  }
  for (const report of consumerReports) {
    for (const row of report.byVersion) {
      if (row.failed === 0) continue;
      const label = row.version !== undefined ? `version ${row.version} (schema id ${row.schemaId})` : `schema id ${row.schemaId}`;
      findings.push({
        kind: 'consumer-cannot-read',
        topic,
        consumer: report.consumer,
        message: `consumer ${report.consumer} cannot read ${row.failed} of ${row.events} sampled event(s) written with ${label}: ${row.firstError ?? ''}`,
        details: { ...row },
      });
    }
  }

  return {
    topic,
    sampled: values.length,
    tombstones,
    complete,
    byVersion: [...byVersion.values()].sort(bySchema),
    unknownIds: [...unknown].map(([schemaId, events]) => ({ schemaId, events })).sort(bySchema),
    notWireFormat,
    undecodable: [...undecodable].map(([schemaId, u]) => ({ schemaId, ...(writers.get(schemaId)?.version !== undefined ? { version: writers.get(schemaId)?.version } : {}), ...u })).sort(bySchema),
    consumers: consumerReports,
    findings,
  };
}

/**
 * A writer lookup backed by the registry, labelling each id with its version under `subject`
 * (TopicNameStrategy: `<topic>-value`) when it is registered there.
 */
export function registryWriterLookup(registry: CcompatClient, subject?: string): WriterLookup {
  return async (schemaId) => {
    const found = await registry.schemaById(schemaId);
    if (!found) return undefined;
    const versions = await registry.subjectVersionsById(schemaId);
    const own = versions.find((v) => v.subject === subject) ?? (subject === undefined ? versions[0] : undefined);
    return { ...found, ...(own ? { version: own.version } : {}) };
  };
}

export interface SampleOptions {
  /** The most recent events to read per partition (default 500). */
  perPartition?: number;
  /** Stop waiting after this long and report what was read (default 30 s). */
  timeoutMs?: number;
  logger?: Logger;
}

/**
 * Reads the most recent events of every partition of a topic (values only; null for tombstones) with
 * a throw-away consumer group that commits nothing. Returns `complete: false` if the timeout hit first.
 */
export async function sampleRecentEvents(kafka: Kafka, topic: string, options: SampleOptions = {}): Promise<{ values: (Buffer | null)[]; complete: boolean }> {
  const perPartition = options.perPartition ?? 500;
  const admin = kafka.admin();
  await admin.connect();
  let offsets: { partition: number; high: string; low: string }[];
  try {
    offsets = await admin.fetchTopicOffsets(topic);
  } finally {
    await admin.disconnect();
  }
  const ranges = new Map<number, { start: bigint; end: bigint }>();
  for (const o of offsets) {
    const high = BigInt(o.high);
    const low = BigInt(o.low);
    if (high > low) {
      const start = high - BigInt(perPartition) > low ? high - BigInt(perPartition) : low;
      ranges.set(o.partition, { start, end: high });
    }
  }
  if (ranges.size === 0) return { values: [], complete: true };

  const groupId = `parity-compat-live-${randomBytes(6).toString('hex')}`;
  const consumer = kafka.consumer({ groupId, allowAutoTopicCreation: false });
  const collected = new Map<number, { offset: bigint; value: Buffer | null }[]>();
  const remaining = new Set(ranges.keys());
  let finish: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const range = ranges.get(batch.partition);
        if (!range) return;
        const rows = collected.get(batch.partition) ?? [];
        collected.set(batch.partition, rows);
        for (const message of batch.messages) {
          const offset = BigInt(message.offset);
          // Messages before the seek lands (the group starts from the beginning) are not part of the sample.
          if (offset >= range.start && offset < range.end) rows.push({ offset, value: message.value });
        }
        // lastOffset counts transaction markers and aborted records too, which are never delivered as
        // messages: judging by it, a partition that ends with a commit marker still completes.
        // An empty fetch reports the high watermark as its last offset without having delivered anything
        // up to it, so only a batch that carried records (messages or markers) can complete a partition.
        if (batch.firstOffset() !== null && BigInt(batch.lastOffset()) >= range.end - 1n && remaining.delete(batch.partition) && remaining.size === 0) finish();
      },
    });
    for (const [partition, range] of ranges) consumer.seek({ topic, partition, offset: range.start.toString() });
    const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), options.timeoutMs ?? 30_000).unref());
    const outcome = await Promise.race([finished.then(() => 'done' as const), timeout]);
    if (outcome === 'timeout') options.logger?.warn({ topic, partitions: [...remaining] }, 'live sample timed out before the end of every partition');
  } finally {
    await consumer.disconnect();
  }
  // The group committed nothing; removing it keeps the cluster's group list clean.
  const cleanup = kafka.admin();
  try {
    await cleanup.connect();
    await cleanup.deleteGroups([groupId]);
  } catch (err) {
    options.logger?.warn({ groupId, err: describe(err) }, 'could not delete the live-sample consumer group');
  } finally {
    await cleanup.disconnect();
  }
  const values = [...collected.entries()]
    .sort(([a], [b]) => a - b)
    .flatMap(([, rows]) => rows.sort((x, y) => (x.offset < y.offset ? -1 : 1)).map((r) => r.value));
  return { values, complete: remaining.size === 0 };
}

export interface LiveCheckInput {
  kafka: Kafka;
  registry: CcompatClient;
  topic: string;
  /** The value subject of the topic, used to label schema ids with versions. */
  subject?: string;
  consumers: readonly LiveConsumer[];
  sample?: SampleOptions;
}

/** Samples a topic and analyses what its consumers can read. */
export async function checkLiveEvents(input: LiveCheckInput): Promise<LiveReport> {
  const { values, complete } = await sampleRecentEvents(input.kafka, input.topic, input.sample);
  return analyzeEvents(input.topic, values, registryWriterLookup(input.registry, input.subject ?? `${input.topic}-value`), input.consumers, complete);
}
