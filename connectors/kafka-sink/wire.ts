/**
 * The few pieces of the Kafka wire protocol the CDC's produce path speaks, encoded and decoded by hand:
 * request framing (header v1), ApiVersions v0, SaslHandshake v1, SaslAuthenticate v1, InitProducerId
 * v1, Produce v7 with RecordBatch v2 (magic 2, CreateTime, idempotent: producer id, epoch and base
 * sequence; uncompressed, gzip or zstd), and their responses. Pure functions over Buffers;
 * produce-client.ts owns the sockets.
 *
 * Produce v7 is the first version a broker accepts zstd batches in (KIP-110); older versions get
 * UNSUPPORTED_COMPRESSION_TYPE. Kafka 2.1 and later speak v7.
 *
 * Why by hand: encoding a produce request through kafkajs took ~42% of the connector's CPU at full
 * speed (an Encoder and a Buffer per record header, varints through Buffer.from, per-partition array
 * copies). Here a whole request is written into one Buffer with no per-record allocation.
 *
 * Reference: https://kafka.apache.org/protocol (Produce, InitProducerId, ApiVersions; "Record Batch").
 */
import { createRequire } from 'node:module';
import { gunzipSync, gzipSync, zstdCompressSync, zstdDecompressSync } from 'node:zlib';

export const API_PRODUCE = 0;
export const API_VERSIONS = 18;
export const API_INIT_PRODUCER_ID = 22;
export const API_SASL_HANDSHAKE = 17;
export const API_SASL_AUTHENTICATE = 36;
export const SASL_HANDSHAKE_VERSION = 1;
export const SASL_AUTHENTICATE_VERSION = 1;
export const PRODUCE_VERSION = 7;
export const INIT_PRODUCER_ID_VERSION = 1;

// ---------------------------------------------------------------------------------------------------
// CRC-32C (Castagnoli), slicing by 4.

const CRC_TABLES: Uint32Array[] = (() => {
  const tables = [new Uint32Array(256), new Uint32Array(256), new Uint32Array(256), new Uint32Array(256)];
  const t0 = tables[0]!;
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t0[i] = c >>> 0;
  }
  for (let i = 0; i < 256; i++) {
    let c = t0[i]!;
    for (let t = 1; t < 4; t++) {
      c = t0[c & 0xff]! ^ (c >>> 8);
      tables[t]![i] = c >>> 0;
    }
  }
  return tables;
})();

// The CRC of every record batch is the wire path's largest single cost in JavaScript (6 % of the connector's
// CPU under bench:cdc); @node-rs/crc32 (the native CRC-32C that @platformatic/kafka itself uses, SSE 4.2 where
// the CPU has it) is ~12x faster on 16 KiB batches. Where its prebuilt binary is missing, the table code below
// computes the same value.
const nativeCrc32c = ((): ((buf: Uint8Array) => number) | undefined => {
  try {
    return (createRequire(import.meta.url)('@node-rs/crc32') as { crc32c(input: Uint8Array): number }).crc32c;
  } catch {
    return undefined;
  }
})();

/** CRC-32C of `buf[start, end)`, as an unsigned 32-bit number. */
export function crc32c(buf: Uint8Array, start = 0, end = buf.length): number {
  if (nativeCrc32c) return nativeCrc32c(start === 0 && end === buf.length ? buf : buf.subarray(start, end)) >>> 0;
  return crc32cTables(buf, start, end);
}

/** CRC-32C by slicing by 4: the portable fallback of {@link crc32c}. */
export function crc32cTables(buf: Uint8Array, start = 0, end = buf.length): number {
  const [t0, t1, t2, t3] = CRC_TABLES as [Uint32Array, Uint32Array, Uint32Array, Uint32Array];
  let crc = 0xffffffff;
  let i = start;
  for (; i + 4 <= end; i += 4) {
    crc ^= buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24);
    crc = t3[crc & 0xff]! ^ t2[(crc >>> 8) & 0xff]! ^ t1[(crc >>> 16) & 0xff]! ^ t0[crc >>> 24]!;
  }
  for (; i < end; i++) crc = t0[(crc ^ buf[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

// ---------------------------------------------------------------------------------------------------
// A growable write buffer.

export class Writer {
  buf: Buffer;
  pos = 0;

  constructor(initial = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  reset(): void {
    this.pos = 0;
  }

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  int8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v & 0xff;
  }

  int16(v: number): void {
    this.ensure(2);
    this.buf.writeInt16BE(v, this.pos);
    this.pos += 2;
  }

  int32(v: number): void {
    this.ensure(4);
    this.buf.writeInt32BE(v, this.pos);
    this.pos += 4;
  }

  uint32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32BE(v, this.pos);
    this.pos += 4;
  }

  int64(v: bigint | number): void {
    this.ensure(8);
    this.buf.writeBigInt64BE(BigInt(v), this.pos);
    this.pos += 8;
  }

  /** Zig-zag varint of a 32-bit signed value (lengths, deltas, counts). */
  varint(v: number): void {
    this.ensure(5);
    let z = ((v << 1) ^ (v >> 31)) >>> 0;
    while (z >= 0x80) {
      this.buf[this.pos++] = (z & 0x7f) | 0x80;
      z >>>= 7;
    }
    this.buf[this.pos++] = z;
  }

  /** Zig-zag varlong of a safe integer (timestamp deltas). */
  varlong(v: number): void {
    if (v >= -0x40000000 && v < 0x40000000) {
      this.varint(v);
      return;
    }
    this.ensure(10);
    let z = v >= 0 ? v * 2 : -v * 2 - 1;
    while (z >= 0x80) {
      this.buf[this.pos++] = (z % 0x80) | 0x80;
      z = Math.floor(z / 0x80);
    }
    this.buf[this.pos++] = z;
  }

  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /** Kafka STRING (int16 length); null as -1 (NULLABLE_STRING). */
  string(s: string | null): void {
    if (s === null) {
      this.int16(-1);
      return;
    }
    const len = Buffer.byteLength(s);
    this.int16(len);
    this.ensure(len);
    this.pos += this.buf.write(s, this.pos);
  }

  /** Returns a copy of what was written. */
  toBuffer(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.pos));
  }
}

// ---------------------------------------------------------------------------------------------------
// Requests.

export interface RequestHeader {
  apiKey: number;
  apiVersion: number;
  correlationId: number;
  clientId: string;
}

/** Starts a request in `w`: a 4-byte size placeholder and header v1. Finish with `endRequest`. */
export function beginRequest(w: Writer, h: RequestHeader): void {
  w.reset();
  w.int32(0);
  w.int16(h.apiKey);
  w.int16(h.apiVersion);
  w.int32(h.correlationId);
  w.string(h.clientId);
}

/** Patches the size prefix and returns the finished frame (a copy: `w` is reused). */
export function endRequest(w: Writer): Buffer {
  w.buf.writeInt32BE(w.pos - 4, 0);
  return w.toBuffer();
}

export function apiVersionsRequest(w: Writer, correlationId: number, clientId: string): Buffer {
  beginRequest(w, { apiKey: API_VERSIONS, apiVersion: 0, correlationId, clientId });
  return endRequest(w);
}

/** SaslHandshake v1: the mechanism; v1 means the exchange then runs in SaslAuthenticate requests. */
export function saslHandshakeRequest(w: Writer, correlationId: number, clientId: string, mechanism: string): Buffer {
  beginRequest(w, { apiKey: API_SASL_HANDSHAKE, apiVersion: SASL_HANDSHAKE_VERSION, correlationId, clientId });
  w.string(mechanism);
  return endRequest(w);
}

/** SaslAuthenticate v1: one message of the SASL exchange (BYTES). */
export function saslAuthenticateRequest(w: Writer, correlationId: number, clientId: string, authBytes: Buffer): Buffer {
  beginRequest(w, { apiKey: API_SASL_AUTHENTICATE, apiVersion: SASL_AUTHENTICATE_VERSION, correlationId, clientId });
  w.int32(authBytes.length);
  w.bytes(authBytes);
  return endRequest(w);
}

export function initProducerIdRequest(w: Writer, correlationId: number, clientId: string): Buffer {
  beginRequest(w, { apiKey: API_INIT_PRODUCER_ID, apiVersion: INIT_PRODUCER_ID_VERSION, correlationId, clientId });
  w.string(null); // transactional_id: none (idempotent only)
  w.int32(60_000); // transaction_timeout_ms: unused without a transactional id
  return endRequest(w);
}

/** Header values: bytes, or text written as UTF-8. */
export type WireHeaderValue = Buffer | string;

/**
 * One record as it goes into a batch. Headers are either pairs with pre-encoded keys, or a name -> value
 * record (the CDC's EncodedChange passes its own, so the hot path builds no pair arrays per event);
 * a record's header names are a handful of constants whose bytes are made once (headerName).
 */
export interface WireRecord {
  key: Buffer | null;
  value: Buffer | null;
  headers: readonly (readonly [Buffer, WireHeaderValue])[] | Readonly<Record<string, WireHeaderValue>>;
}

export interface PartitionBatch {
  topic: string;
  partition: number;
  baseSequence: number;
  records: readonly WireRecord[];
}

export interface ProducerIdentity {
  producerId: bigint;
  producerEpoch: number;
}

/**
 * Produce v7 (acks, timeout; one RecordBatch v2 per partition, all records with timestamp `timestampMs`).
 * `batches` must be grouped so that one topic's partitions are contiguous.
 */
export function produceRequest(
  w: Writer,
  header: { correlationId: number; clientId: string },
  options: { acks: number; timeoutMs: number; timestampMs: number; producer: ProducerIdentity; compression?: Compression },
  batches: readonly PartitionBatch[],
): Buffer {
  beginRequest(w, { apiKey: API_PRODUCE, apiVersion: PRODUCE_VERSION, correlationId: header.correlationId, clientId: header.clientId });
  w.string(null); // transactional_id
  w.int16(options.acks);
  w.int32(options.timeoutMs);
  // Topics, each with its partitions.
  const topics: { topic: string; from: number; to: number }[] = [];
  for (let i = 0; i < batches.length; i++) {
    const last = topics[topics.length - 1];
    if (last && last.topic === batches[i]!.topic) last.to = i + 1;
    else topics.push({ topic: batches[i]!.topic, from: i, to: i + 1 });
  }
  w.int32(topics.length);
  for (const t of topics) {
    w.string(t.topic);
    w.int32(t.to - t.from);
    for (let i = t.from; i < t.to; i++) {
      const b = batches[i]!;
      w.int32(b.partition);
      const sizeAt = w.pos;
      w.int32(0); // records: NULLABLE_BYTES length, patched below
      writeRecordBatch(w, b, options.timestampMs, options.producer, options.compression);
      w.buf.writeInt32BE(w.pos - sizeAt - 4, sizeAt);
    }
  }
  return endRequest(w);
}

/** Record batch compression codecs parity writes, and their attribute bits (0-2). */
export type Compression = 'none' | 'gzip' | 'zstd';
export const COMPRESSION_CODES: Readonly<Record<Compression, number>> = { none: 0, gzip: 1, zstd: 4 };

function compress(codec: Compression, data: Uint8Array): Buffer {
  return codec === 'gzip' ? gzipSync(data) : zstdCompressSync(data);
}

/** RecordBatch v2 (magic 2): the records section compressed with `compression` (default none). */
export function writeRecordBatch(
  w: Writer,
  batch: PartitionBatch,
  timestampMs: number,
  producer: ProducerIdentity,
  compression: Compression = 'none',
): void {
  const start = w.pos;
  w.int64(0n); // baseOffset: the broker assigns
  w.int32(0); // batchLength, patched
  w.int32(-1); // partitionLeaderEpoch
  w.int8(2); // magic
  const crcAt = w.pos;
  w.uint32(0); // crc, patched
  const crcFrom = w.pos;
  w.int16(COMPRESSION_CODES[compression]); // attributes: codec bits; CreateTime, not transactional, not control
  w.int32(batch.records.length - 1); // lastOffsetDelta
  w.int64(timestampMs); // baseTimestamp
  w.int64(timestampMs); // maxTimestamp
  w.int64(producer.producerId);
  w.int16(producer.producerEpoch);
  w.int32(batch.baseSequence);
  w.int32(batch.records.length);
  const recordsAt = w.pos;
  for (let i = 0; i < batch.records.length; i++) writeRecord(w, batch.records[i]!, i);
  if (compression !== 'none') {
    // The records are written in place, then replaced by their compressed form (a new Buffer).
    const packed = compress(compression, w.buf.subarray(recordsAt, w.pos));
    w.pos = recordsAt;
    w.bytes(packed);
  }
  w.buf.writeInt32BE(w.pos - start - 12, start + 8);
  w.buf.writeUInt32BE(crc32c(w.buf, crcFrom, w.pos), crcAt);
}

function varintSize(v: number): number {
  let z = ((v << 1) ^ (v >> 31)) >>> 0;
  let n = 1;
  while (z >= 0x80) {
    z >>>= 7;
    n++;
  }
  return n;
}

/** Header names are a handful of constants: their bytes are made once. */
const HEADER_NAMES = new Map<string, Buffer>();
function headerName(name: string): Buffer {
  let b = HEADER_NAMES.get(name);
  if (!b) HEADER_NAMES.set(name, (b = Buffer.from(name)));
  return b;
}

/** Bytes of a header value (Buffer.byteLength is a fast call: a hand-written ASCII check measured slower). */
function headerValueSize(v: WireHeaderValue): number {
  return typeof v === 'string' ? Buffer.byteLength(v) : v.length;
}

function writeHeader(w: Writer, k: Buffer, v: WireHeaderValue, vLen: number): void {
  w.varint(k.length);
  w.bytes(k);
  w.varint(vLen);
  if (typeof v !== 'string') w.bytes(v);
  else if (vLen === v.length && vLen <= 64) {
    // ASCII (as many bytes as UTF-16 units), short (the ordinal, the position): copied by hand, which
    // measured ~10 % less CPU for a whole produce request than Buffer.write's call per header.
    const buf = w.buf;
    let pos = w.pos;
    for (let i = 0; i < vLen; i++) buf[pos++] = v.charCodeAt(i);
    w.pos = pos;
  } else w.pos += w.buf.write(v, w.pos, vLen, 'utf8');
}

function writeRecord(w: Writer, r: WireRecord, offsetDelta: number): void {
  const keyLen = r.key ? r.key.length : -1;
  const valueLen = r.value ? r.value.length : -1;
  const headers = r.headers;
  const pairs = Array.isArray(headers) ? (headers as readonly (readonly [Buffer, WireHeaderValue])[]) : null;
  const named = pairs ? null : (headers as Readonly<Record<string, WireHeaderValue>>);
  let count = 0;
  let headerBytes = 0;
  if (pairs) {
    count = pairs.length;
    for (let i = 0; i < pairs.length; i++) {
      const [k, v] = pairs[i]!;
      const vLen = headerValueSize(v);
      headerBytes += varintSize(k.length) + k.length + varintSize(vLen) + vLen;
    }
  } else {
    for (const name in named) {
      const k = headerName(name);
      const vLen = headerValueSize(named[name]!);
      headerBytes += varintSize(k.length) + k.length + varintSize(vLen) + vLen;
      count++;
    }
  }
  const body =
    1 +
    1 +
    varintSize(offsetDelta) +
    varintSize(keyLen) +
    Math.max(0, keyLen) +
    varintSize(valueLen) +
    Math.max(0, valueLen) +
    varintSize(count) +
    headerBytes;
  w.ensure(body + 5);
  w.varint(body);
  w.int8(0); // attributes
  w.varint(0); // timestampDelta: every record of a batch carries the batch's timestamp
  w.varint(offsetDelta);
  w.varint(keyLen);
  if (r.key) w.bytes(r.key);
  w.varint(valueLen);
  if (r.value) w.bytes(r.value);
  w.varint(count);
  if (pairs)
    for (let i = 0; i < pairs.length; i++) {
      const [k, v] = pairs[i]!;
      writeHeader(w, k, v, headerValueSize(v));
    }
  else
    for (const name in named) {
      const v = named[name]!;
      writeHeader(w, headerName(name), v, headerValueSize(v));
    }
}

// ---------------------------------------------------------------------------------------------------
// Responses (the frame's size prefix and correlation id already stripped by the reader).

export class Reader {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  int16(): number {
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  int32(): number {
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  int64(): bigint {
    const v = this.buf.readBigInt64BE(this.pos);
    this.pos += 8;
    return v;
  }

  /** BYTES (int32 length); null for -1. */
  bytes(): Buffer | null {
    const len = this.int32();
    if (len < 0) return null;
    const b = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return b;
  }

  /** Zig-zag varint (32-bit). */
  varint(): number {
    let z = 0;
    let shift = 0;
    for (;;) {
      const b = this.buf[this.pos++]!;
      z |= (b & 0x7f) << shift;
      if (b < 0x80) break;
      shift += 7;
    }
    return (z >>> 1) ^ -(z & 1);
  }

  /** Varint-length bytes of a record (null for -1). */
  varbytes(): Buffer | null {
    const len = this.varint();
    if (len < 0) return null;
    const b = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return b;
  }

  string(): string | null {
    const len = this.int16();
    if (len < 0) return null;
    const s = this.buf.toString('utf8', this.pos, this.pos + len);
    this.pos += len;
    return s;
  }
}

export function readApiVersions(body: Buffer): { errorCode: number; versions: Map<number, { min: number; max: number }> } {
  const r = new Reader(body);
  const errorCode = r.int16();
  const versions = new Map<number, { min: number; max: number }>();
  const n = r.int32();
  for (let i = 0; i < n; i++) {
    const key = r.int16();
    versions.set(key, { min: r.int16(), max: r.int16() });
  }
  return { errorCode, versions };
}

export function readSaslHandshake(body: Buffer): { errorCode: number; mechanisms: string[] } {
  const r = new Reader(body);
  const errorCode = r.int16();
  const n = r.int32();
  const mechanisms: string[] = [];
  for (let i = 0; i < n; i++) mechanisms.push(r.string() ?? '');
  return { errorCode, mechanisms };
}

export function readSaslAuthenticate(body: Buffer): {
  errorCode: number;
  errorMessage: string | null;
  authBytes: Buffer;
  sessionLifetimeMs: bigint;
} {
  const r = new Reader(body);
  const errorCode = r.int16();
  const errorMessage = r.string();
  const authBytes = r.bytes() ?? Buffer.alloc(0);
  const sessionLifetimeMs = r.int64();
  return { errorCode, errorMessage, authBytes, sessionLifetimeMs };
}

/** One record of a decoded batch (tests and diagnostics: the produce path never reads batches). */
export interface DecodedRecord {
  offsetDelta: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: [string, Buffer | null][];
}

/**
 * Decodes one RecordBatch v2 (as `writeRecordBatch` writes it): checks the CRC, decompresses the
 * records by the attribute's codec bits and returns them with the header fields.
 */
export function readRecordBatch(buf: Buffer): {
  attributes: number;
  compression: Compression;
  producerId: bigint;
  baseSequence: number;
  records: DecodedRecord[];
} {
  const r = new Reader(buf);
  r.int64(); // baseOffset
  const batchLength = r.int32();
  r.int32(); // partitionLeaderEpoch
  const magic = buf[r.pos++]!;
  if (magic !== 2) throw new Error(`record batch magic ${magic}, expected 2`);
  const crc = buf.readUInt32BE(r.pos);
  r.pos += 4;
  const end = 12 + batchLength;
  if (crc32c(buf, r.pos, end) !== crc) throw new Error('record batch CRC-32C mismatch');
  const attributes = r.int16();
  const codec = attributes & 0x07;
  const compression = (Object.entries(COMPRESSION_CODES).find(([, c]) => c === codec)?.[0] ?? null) as Compression | null;
  if (compression === null) throw new Error(`record batch codec ${codec} is not one parity reads`);
  r.int32(); // lastOffsetDelta
  r.int64(); // baseTimestamp
  r.int64(); // maxTimestamp
  const producerId = r.int64();
  r.int16(); // producerEpoch
  const baseSequence = r.int32();
  const count = r.int32();
  const raw = buf.subarray(r.pos, end);
  const body = compression === 'none' ? raw : compression === 'gzip' ? gunzipSync(raw) : zstdDecompressSync(raw);
  const rr = new Reader(body);
  const records: DecodedRecord[] = [];
  for (let i = 0; i < count; i++) {
    rr.varint(); // length
    rr.pos++; // attributes
    rr.varint(); // timestampDelta
    const offsetDelta = rr.varint();
    const key = rr.varbytes();
    const value = rr.varbytes();
    const headers: [string, Buffer | null][] = [];
    const h = rr.varint();
    for (let j = 0; j < h; j++) headers.push([rr.varbytes()?.toString('utf8') ?? '', rr.varbytes()]);
    records.push({ offsetDelta, key, value, headers });
  }
  return { attributes, compression, producerId, baseSequence, records };
}

export function readInitProducerId(body: Buffer): { errorCode: number } & ProducerIdentity {
  const r = new Reader(body);
  r.int32(); // throttle_time_ms
  const errorCode = r.int16();
  const producerId = r.int64();
  const producerEpoch = r.int16();
  return { errorCode, producerId, producerEpoch };
}

export interface PartitionResult {
  topic: string;
  partition: number;
  errorCode: number;
  baseOffset: bigint;
}

export function readProduceResponse(body: Buffer): PartitionResult[] {
  const r = new Reader(body);
  const out: PartitionResult[] = [];
  const topics = r.int32();
  for (let t = 0; t < topics; t++) {
    const topic = r.string() ?? '';
    const partitions = r.int32();
    for (let p = 0; p < partitions; p++) {
      const partition = r.int32();
      const errorCode = r.int16();
      const baseOffset = r.int64();
      r.int64(); // log_append_time_ms
      r.int64(); // log_start_offset (v5+)
      out.push({ topic, partition, errorCode, baseOffset });
    }
  }
  return out;
}

/** Names and advice for the error codes a produce can meet (https://kafka.apache.org/protocol#protocol_error_codes). */
export const KAFKA_ERRORS: Record<number, { name: string; hint?: string }> = {
  [-1]: { name: 'UNKNOWN_SERVER_ERROR', hint: 'see the broker log' },
  2: { name: 'CORRUPT_MESSAGE' },
  3: {
    name: 'UNKNOWN_TOPIC_OR_PARTITION',
    hint: 'the topic or partition does not exist (yet): CDC creates its topics at start; check that nobody deleted them',
  },
  5: { name: 'LEADER_NOT_AVAILABLE' },
  6: { name: 'NOT_LEADER_OR_FOLLOWER', hint: 'leadership moved; CDC reconnects and replays from the slot' },
  7: { name: 'REQUEST_TIMED_OUT' },
  10: {
    name: 'MESSAGE_TOO_LARGE',
    hint: 'one event is larger than the topic accepts: raise max.message.bytes on the topic (and message.max.bytes on the broker); CDC stays paused at that change until then',
  },
  18: { name: 'RECORD_LIST_TOO_LARGE', hint: 'raise max.message.bytes on the topic, or lower the sink batch size' },
  19: { name: 'NOT_ENOUGH_REPLICAS', hint: 'fewer in-sync replicas than min.insync.replicas' },
  20: { name: 'NOT_ENOUGH_REPLICAS_AFTER_APPEND' },
  29: { name: 'TOPIC_AUTHORIZATION_FAILED', hint: 'grant the CDC principal WRITE on the topic' },
  31: { name: 'CLUSTER_AUTHORIZATION_FAILED', hint: 'grant the CDC principal IDEMPOTENT_WRITE on the cluster' },
  33: {
    name: 'UNSUPPORTED_SASL_MECHANISM',
    hint: 'use a mechanism the broker enables (sasl.enabled.mechanisms) in kafka.security.sasl.mechanism',
  },
  34: { name: 'ILLEGAL_SASL_STATE' },
  35: { name: 'UNSUPPORTED_VERSION', hint: 'the broker is older than Kafka 2.1; CDC needs Produce v7' },
  45: { name: 'OUT_OF_ORDER_SEQUENCE_NUMBER' },
  46: { name: 'DUPLICATE_SEQUENCE_NUMBER' },
  47: { name: 'INVALID_PRODUCER_EPOCH' },
  58: { name: 'SASL_AUTHENTICATION_FAILED', hint: 'check kafka.security.sasl.username/password (and the mechanism)' },
  59: { name: 'UNKNOWN_PRODUCER_ID' },
  76: {
    name: 'UNSUPPORTED_COMPRESSION_TYPE',
    hint: 'the broker or the topic does not accept this codec: set cdc.compression to none or gzip, or use Kafka 2.1 or later for zstd',
  },
  87: { name: 'INVALID_RECORD' },
};

export function kafkaErrorName(code: number): string {
  return KAFKA_ERRORS[code]?.name ?? `error code ${code}`;
}
