/**
 * The Avro bytes of a Debezium envelope, written field by field: avsc writes the before/after rows
 * (the table's own record type), this module writes the rest — the source block, op and ts_ms — with
 * the strings that repeat on every event (connector, topic prefix, database, schema, table, op) kept
 * as ready bytes. The output is byte for byte what avsc writes for the whole envelope with the schema
 * of value-schema.ts (test/unit/connectors/avro-envelope.test.ts holds the two side by side).
 *
 * Anything unexpected (a long given as a string, a missing field) makes `writeEnvelope` return null,
 * and the caller encodes with avsc, which either handles it or says what is wrong.
 */
import type avsc from 'avsc';
import type { ChangeEnvelope } from '../../services/core/change-event.js';

/** Bytes of an Avro string (length + UTF-8) for the few distinct strings of the source block. */
const STRING_BYTES = new Map<string, Buffer>();

function stringBytes(s: string): Buffer {
  let b = STRING_BYTES.get(s);
  if (!b) {
    const utf8 = Buffer.from(s);
    b = Buffer.allocUnsafe(10 + utf8.length);
    const n = writeLongAt(b, 0, utf8.length);
    utf8.copy(b, n);
    b = b.subarray(0, n + utf8.length);
    if (STRING_BYTES.size > 10_000) STRING_BYTES.clear();
    STRING_BYTES.set(s, b);
  }
  return b;
}

/** Zig-zag varint of a safe integer at `pos`; returns the position after it. */
function writeLongAt(buf: Buffer, pos: number, n: number): number {
  if (n >= -0x40000000 && n < 0x40000000) {
    let z = ((n << 1) ^ (n >> 31)) >>> 0;
    while (z >= 0x80) {
      buf[pos++] = (z & 0x7f) | 0x80;
      z >>>= 7;
    }
    buf[pos++] = z;
    return pos;
  }
  let z = n >= 0 ? n * 2 : -n * 2 - 1;
  while (z >= 0x80) {
    buf[pos++] = (z % 0x80) | 0x80;
    z = Math.floor(z / 0x80);
  }
  buf[pos++] = z;
  return pos;
}

const isLong = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && Math.abs(v) < 2 ** 52;

/**
 * Writes the envelope after `start` in `buf`. Returns the end position; -1 when `buf` is too small
 * (grow it and call again); null when the envelope needs avsc's general path.
 */
export function writeEnvelope(rowType: avsc.Type, envelope: ChangeEnvelope, buf: Buffer, start: number): number | null {
  const s = envelope.source;
  if (!s || !isLong(s.ts_ms) || !isLong(envelope.ts_ms)) return null;
  if (typeof s.version !== 'string' || typeof s.connector !== 'string' || typeof s.name !== 'string' || typeof s.db !== 'string')
    return null;
  if (typeof s.schema !== 'string' || typeof s.table !== 'string' || typeof envelope.op !== 'string') return null;
  const snapshot = s.snapshot ?? null;
  const sequence = s.sequence ?? null;
  const tsUs = s.ts_us ?? null;
  const txId = s.txId ?? null;
  const lsn = s.lsn ?? null;
  if ((snapshot !== null && typeof snapshot !== 'string') || (sequence !== null && typeof sequence !== 'string')) return null;
  if ((tsUs !== null && !isLong(tsUs)) || (txId !== null && !isLong(txId)) || (lsn !== null && !isLong(lsn))) return null;

  let pos = writeRow(rowType, envelope.before, buf, start);
  if (pos < 0) return -1;
  pos = writeRow(rowType, envelope.after, buf, pos);
  if (pos < 0) return -1;
  // Worst case of what follows: the fixed strings, the sequence (UTF-8, at most 3 bytes per unit), longs.
  const version = stringBytes(s.version);
  const connector = stringBytes(s.connector);
  const name = stringBytes(s.name);
  const db = stringBytes(s.db);
  const schema = stringBytes(s.schema);
  const table = stringBytes(s.table);
  const op = stringBytes(envelope.op);
  const snap = snapshot === null ? null : stringBytes(snapshot);
  const need =
    version.length +
    connector.length +
    name.length +
    db.length +
    schema.length +
    table.length +
    op.length +
    (snap?.length ?? 0) +
    (sequence === null ? 0 : sequence.length * 3 + 10) +
    8 * 11;
  if (pos + need > buf.length) return -1;
  pos += version.copy(buf, pos);
  pos += connector.copy(buf, pos);
  pos += name.copy(buf, pos);
  pos = writeLongAt(buf, pos, s.ts_ms);
  // snapshot: ["string", "null"]
  if (snap === null) buf[pos++] = 2;
  else {
    buf[pos++] = 0;
    pos += snap.copy(buf, pos);
  }
  pos += db.copy(buf, pos);
  // sequence: ["null", "string"]
  if (sequence === null) buf[pos++] = 0;
  else {
    buf[pos++] = 2;
    const len = Buffer.byteLength(sequence);
    pos = writeLongAt(buf, pos, len);
    pos += buf.write(sequence, pos, len, 'utf8');
  }
  pos = writeOptionalLong(buf, pos, tsUs);
  pos += schema.copy(buf, pos);
  pos += table.copy(buf, pos);
  pos = writeOptionalLong(buf, pos, txId);
  pos = writeOptionalLong(buf, pos, lsn);
  pos += op.copy(buf, pos);
  pos = writeOptionalLong(buf, pos, envelope.ts_ms);
  return pos;
}

/** ["null", Value]: -1 when `buf` is too small. */
function writeRow(rowType: avsc.Type, row: unknown, buf: Buffer, pos: number): number {
  if (pos + 1 > buf.length) return -1;
  if (row === null || row === undefined) {
    buf[pos] = 0;
    return pos + 1;
  }
  buf[pos] = 2;
  const end = rowType.encode(row, buf, pos + 1);
  return end < 0 ? -1 : end;
}

/** ["null", "long"] */
function writeOptionalLong(buf: Buffer, pos: number, v: number | null): number {
  if (v === null) {
    buf[pos++] = 0;
    return pos;
  }
  buf[pos++] = 2;
  return writeLongAt(buf, pos, v);
}
