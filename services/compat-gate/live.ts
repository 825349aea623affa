import { readRange, topicOffsets } from '../../connectors/kafka-sink/admin.js';
import type { KafkaClients } from '../core/clients.js';
import { ParityError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { createAvroDatumReader, type AvroDatumReader } from './avro-datum.js';
import type { Finding } from './findings.js';
import { checkJsonSchemaBackward } from './json-schema-compat.js';
import { loadJsonSchema } from './json-schema-model.js';
import { protobufCodec } from '../../connectors/kafka-sink/protobuf-runtime.js';
import { decodeMessageIndexes } from '../../connectors/kafka-sink/protobuf-wire.js';
import { checkProtobufReaderWriter } from './protobuf-diff.js';
import { parseProtobufSchema, parseProtoFile, type ProtoReferenceTexts } from './protobuf-schema.js';
import type { CcompatClient, RegistrySchemaType } from './registry-client.js';
import { referenceTexts } from './registry.js';
import { type ConnectJsonWriter, connectJsonWriter, parseConnectJsonEvent, readerAvroSchema } from './connect-json-events.js';

/**
 * Live-event checks during cutover: sample the most recent events of a topic, decode each with the
 * writer schema its Confluent wire-format header names, and check that every consumer's reader schema
 * can read it. Counts go per consumer and per writer schema version, so a report says "billing cannot
 * read the 412 events written with version 3" rather than "something is incompatible".
 *
 * Avro events are read datum by datum through schema resolution (a consumer fails only on events that
 * hit the gap). JSON Schema events are judged per writer version with the local checker, since a JSON
 * consumer reads whatever its schema accepts. Protobuf events are unframed with their message indexes,
 * judged per writer version with Confluent's rules (a wrong wire group can decode silently into a
 * wrong value, so decoding alone proves nothing), then decoded with the reader's message type.
 *
 * Events written with `cdc.format: connect-json` (JsonConverter's `{schema, payload}`, no registry)
 * carry their writer schema: each distinct embedded schema is one writer (negative ids -1, -2, ... in
 * order of appearance, `embeddedSchema` naming it), read as the Avro schema AvroData makes of it, and
 * each consumer (an Avro reader schema, or a Kafka Connect schema in JsonConverter's JSON) reads the
 * payload through Avro's schema resolution (connect-json-events.ts).
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
  /** Protobuf: the texts its imports resolve to (the registry's schema references); readers' imports resolve the same way. */
  references?: ProtoReferenceTexts;
  /** A connect-json event's embedded schema (not in the registry): the Connect schema's name. */
  embeddedSchema?: string;
}

/** Looks up a writer schema by id; undefined when the registry does not know it. */
export type WriterLookup = (schemaId: number) => Promise<WriterSchema | undefined>;

export interface VersionCount {
  /** The registry's id; negative for a connect-json event's embedded schema (-1 for the first seen). */
  schemaId: number;
  version?: number;
  /** connect-json: the embedded Connect schema's name (no registry version). */
  embeddedSchema?: string;
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
  if (writer.embeddedSchema !== undefined) {
    // connect-json: an Avro reader as it is, a Kafka Connect schema as AvroData renders it.
    let datum: AvroDatumReader;
    try {
      datum = createAvroDatumReader(readerAvroSchema(consumer.readerSchema), writer.schema);
    } catch (err) {
      throw new Error(`a connect-json topic is read with an Avro or a Kafka Connect reader schema: ${describe(err)}`);
    }
    return (payload) => void datum.read(payload);
  }
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
  const refs = writer.references ?? new Map();
  const problems = checkProtobufReaderWriter(parseProtobufSchema(consumer.readerSchema, refs), parseProtobufSchema(writer.schema, refs));
  const reason = problems.length > 0 ? `${problems[0]?.rule} at ${problems[0]?.location}: ${problems[0]?.message}` : undefined;
  const writerCodec = protobufCodec(writer.schema, refs);
  const readerCodec = protobufCodec(consumer.readerSchema, refs);
  return (payload) => {
    if (reason) throw new Error(reason);
    const { indexes, message } = decodeMessageIndexes(payload);
    // The reader's type is the message of the same name (a consumer is built for one message type).
    const name = writerCodec.localNameAt(indexes);
    const at = readerCodec.indexesOf(name);
    if (!at) throw new Error(`the reader schema has no message ${name}`);
    readerCodec.typeAt(at).decode(message);
  };
}

/** Decodes with the writer schema alone: separates corrupt events from events a consumer cannot read. */
function writerDecoder(writer: WriterSchema): (payload: Buffer) => void {
  if (writer.schemaType === 'AVRO') {
    const self = createAvroDatumReader(writer.schema, writer.schema);
    return (payload) => void self.read(payload);
  }
  if (writer.schemaType === 'JSON') return (payload) => void JSON.parse(payload.toString('utf8'));
  let codec: ReturnType<typeof protobufCodec>;
  try {
    codec = protobufCodec(writer.schema, writer.references ?? new Map());
  } catch (err) {
    // A registered schema protobufjs cannot load (e.g. an import it cannot resolve): its events count as undecodable.
    const reason = describe(err);
    return () => {
      throw new Error(`writer schema cannot be loaded: ${reason}`);
    };
  }
  return (payload) => {
    const { indexes, message } = decodeMessageIndexes(payload);
    codec.typeAt(indexes).decode(message);
  };
}

/**
 * Analyses sampled event values (null = tombstone). Pure apart from `lookup`, so it is tested without
 * Kafka. Consumer reader schemas are validated up front: a broken one is PARITY_BAD_INPUT.
 */
export async function analyzeEvents(
  topic: string,
  values: readonly (Buffer | null)[],
  lookup: WriterLookup,
  consumers: readonly LiveConsumer[],
  complete = true,
): Promise<LiveReport> {
  for (const c of consumers) {
    // The type is not known until a writer id is seen; a reader must at least be JSON (Avro, JSON
    // Schema) or a .proto file.
    try {
      JSON.parse(c.readerSchema);
    } catch (err) {
      try {
        parseProtoFile(c.readerSchema, `reader schema of consumer ${c.name}`);
      } catch {
        throw new ParityError(
          'PARITY_BAD_INPUT',
          `reader schema of consumer ${c.name} is neither JSON (Avro, JSON Schema) nor a .proto file: ${describe(err)}`,
          { cause: err },
        );
      }
    }
  }
  const writers = new Map<number, WriterSchema | undefined>();
  const decoders = new Map<number, (p: Buffer) => void>();
  const readers = new Map<string, EventReader | Error>();
  const byVersion = new Map<number, VersionCount>();
  const unknown = new Map<number, number>();
  const undecodable = new Map<number, { events: number; firstError: string }>();
  const embeddedIds = new Map<string, { schemaId: number; writer: ConnectJsonWriter }>();
  const perConsumer = new Map<string, Map<number, ConsumerVersionCount>>(consumers.map((c) => [c.name, new Map()]));
  let tombstones = 0;
  let notWireFormat = 0;

  for (const value of values) {
    if (value === null) {
      tombstones++;
      continue;
    }
    let framed = splitWireFormat(value);
    let payloadError: string | undefined;
    if (!framed) {
      const event = parseConnectJsonEvent(value);
      if (!event) {
        notWireFormat++;
        continue;
      }
      let embedded = embeddedIds.get(event.schemaText);
      if (!embedded) {
        const writer = connectJsonWriter(event.schemaText);
        embedded = { schemaId: -(embeddedIds.size + 1), writer };
        embeddedIds.set(event.schemaText, embedded);
        writers.set(embedded.schemaId, {
          schema: writer.avroSchema,
          schemaType: 'AVRO',
          embeddedSchema: writer.schemaName ?? '(unnamed)',
        });
      }
      // The payload as Avro binary of its own schema; one that does not fit it is undecodable.
      let payload: Buffer;
      try {
        payload = embedded.writer.encode(event.payload);
      } catch (err) {
        payload = Buffer.alloc(0);
        payloadError = `connect-json payload does not fit its embedded schema: ${describe(err)}`;
      }
      framed = { schemaId: embedded.schemaId, payload };
    }
    const { schemaId, payload } = framed;
    if (!writers.has(schemaId)) writers.set(schemaId, await lookup(schemaId));
    const writer = writers.get(schemaId);
    if (!writer) {
      unknown.set(schemaId, (unknown.get(schemaId) ?? 0) + 1);
      continue;
    }
    const label = {
      ...(writer.version !== undefined ? { version: writer.version } : {}),
      ...(writer.embeddedSchema !== undefined ? { embeddedSchema: writer.embeddedSchema } : {}),
    };
    const count = byVersion.get(schemaId) ?? { schemaId, ...label, events: 0 };
    byVersion.set(schemaId, count);
    count.events++;

    let decode = decoders.get(schemaId);
    if (!decode) {
      decode = writerDecoder(writer);
      decoders.set(schemaId, decode);
    }
    try {
      if (payloadError) throw new Error(payloadError);
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
      const c = counts.get(schemaId) ?? {
        schemaId,
        ...label,
        events: 0,
        readable: 0,
        failed: 0,
      };
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

  // Registry ids in order, then connect-json's embedded schemas in the order they were first seen (-1, -2, ...).
  const rank = (id: number): number => (id < 0 ? 2 ** 40 - id : id);
  const bySchema = (a: { schemaId: number }, b: { schemaId: number }): number => rank(a.schemaId) - rank(b.schemaId);
  const consumerReports: ConsumerReport[] = consumers.map((c) => {
    const rows = [...(perConsumer.get(c.name)?.values() ?? [])].sort(bySchema);
    return {
      consumer: c.name,
      readable: rows.reduce((n, r) => n + r.readable, 0),
      failed: rows.reduce((n, r) => n + r.failed, 0),
      byVersion: rows,
    };
  });

  const findings: Finding[] = [];
  for (const [schemaId, events] of unknown) {
    findings.push({
      kind: 'unknown-schema-id',
      topic,
      message: `${events} event(s) on ${topic} carry schema id ${schemaId}, which the registry does not know`,
      details: { schemaId, events },
    });
  }
  if (notWireFormat > 0) {
    findings.push({
      kind: 'not-wire-format',
      topic,
      message: `${notWireFormat} event(s) on ${topic} are neither in the Confluent wire format (magic byte 0 + schema id) nor connect-json documents ({schema, payload})`,
      details: { events: notWireFormat },
    });
  }
  for (const [schemaId, u] of undecodable) {
    const version = writers.get(schemaId)?.version;
    const embedded = writers.get(schemaId)?.embeddedSchema;
    const own = embedded !== undefined ? `embedded connect-json schema ${embedded}` : `writer schema id ${schemaId}`;
    findings.push({
      kind: 'undecodable',
      topic,
      message: `${u.events} event(s) on ${topic} do not decode with their own ${own}: ${u.firstError}`,
      details: { schemaId, version, ...u },
    });
  }
  for (const report of consumerReports) {
    for (const row of report.byVersion) {
      if (row.failed === 0) continue;
      const label =
        row.embeddedSchema !== undefined
          ? `the connect-json schema ${row.embeddedSchema} (#${-row.schemaId} embedded)`
          : row.version !== undefined
            ? `version ${row.version} (schema id ${row.schemaId})`
            : `schema id ${row.schemaId}`;
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
    undecodable: [...undecodable]
      .map(([schemaId, u]) => ({
        schemaId,
        ...(writers.get(schemaId)?.version !== undefined ? { version: writers.get(schemaId)?.version } : {}),
        ...u,
      }))
      .sort(bySchema),
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
    const references = found.references.length > 0 ? await referenceTexts(registry, found.references) : undefined;
    return {
      schema: found.schema,
      schemaType: found.schemaType,
      ...(own ? { version: own.version } : {}),
      ...(references ? { references } : {}),
    };
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
export async function sampleRecentEvents(
  kafka: KafkaClients,
  topic: string,
  options: SampleOptions = {},
): Promise<{ values: (Buffer | null)[]; complete: boolean }> {
  const perPartition = BigInt(options.perPartition ?? 500);
  const ranges = new Map<number, { start: bigint; end: bigint }>();
  for (const o of await topicOffsets(kafka, topic)) {
    if (o.high > o.low) ranges.set(o.partition, { start: o.high - perPartition > o.low ? o.high - perPartition : o.low, end: o.high });
  }
  if (ranges.size === 0) return { values: [], complete: true };
  const collected = new Map<number, { offset: bigint; value: Buffer | null }[]>();
  const { complete } = await readRange(
    kafka,
    topic,
    ranges,
    (message) => {
      let rows = collected.get(message.partition);
      if (!rows) collected.set(message.partition, (rows = []));
      rows.push({ offset: message.offset, value: message.value ?? null });
    },
    { timeoutMs: options.timeoutMs ?? 30_000, ...(options.logger ? { logger: options.logger } : {}) },
  );
  const values = [...collected.entries()]
    .sort(([a], [b]) => a - b)
    .flatMap(([, rows]) => rows.sort((x, y) => (x.offset < y.offset ? -1 : 1)).map((r) => r.value));
  return { values, complete };
}

export interface LiveCheckInput {
  kafka: KafkaClients;
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
  return analyzeEvents(
    input.topic,
    values,
    registryWriterLookup(input.registry, input.subject ?? `${input.topic}-value`),
    input.consumers,
    complete,
  );
}
