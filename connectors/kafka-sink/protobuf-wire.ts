/**
 * Confluent's wire format for Protobuf: magic byte 0, the 4-byte big-endian schema id, the message
 * indexes, then the Protobuf-encoded message. The indexes locate the message type inside the schema
 * file: `[i]` is the i-th top-level message, `[i, j]` the j-th message nested in it, and so on. They
 * are written as a zig-zag varint count followed by zig-zag varint indexes, except `[0]` (the first
 * message, by far the most common case), which is the single byte 0.
 *
 * Written here once for every producer and reader in the project: @kafkajs/confluent-schema-registry
 * writes no indexes and strips leading zero bytes when reading, so only the first message type of a
 * schema would interoperate with other clients.
 */
import { ParityError } from '../../services/core/errors.js';

const MAGIC_BYTE = 0;

function zigzag(n: number): number {
  return n >= 0 ? n * 2 : -n * 2 - 1;
}

function unzigzag(z: number): number {
  return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
}

function pushVarint(out: number[], value: number): void {
  let z = zigzag(value);
  while (z >= 0x80) {
    out.push((z % 0x80) | 0x80);
    z = Math.floor(z / 0x80);
  }
  out.push(z);
}

/** The message-index bytes for a path of indexes (`[0]` -> a single 0 byte). */
export function encodeMessageIndexes(indexes: readonly number[]): Buffer {
  if (indexes.length === 0 || (indexes.length === 1 && indexes[0] === 0)) return Buffer.from([0]);
  const out: number[] = [];
  pushVarint(out, indexes.length);
  for (const i of indexes) pushVarint(out, i);
  return Buffer.from(out);
}

function readVarint(buf: Buffer, offset: number): { value: number; offset: number } {
  let z = 0;
  let mul = 1;
  for (let i = offset; i < buf.length && i < offset + 5; i++) {
    const b = buf[i] as number;
    z += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) return { value: unzigzag(z), offset: i + 1 };
    mul *= 0x80;
  }
  throw new ParityError('PARITY_DECODE', 'truncated or overlong varint in the Protobuf message indexes');
}

/** Reads the message indexes at the start of `payload` (after the 5-byte header). */
export function decodeMessageIndexes(payload: Buffer): { indexes: number[]; message: Buffer } {
  const count = readVarint(payload, 0);
  if (count.value === 0) return { indexes: [0], message: payload.subarray(count.offset) };
  if (count.value < 0 || count.value > 100) throw new ParityError('PARITY_DECODE', `implausible message-index count ${count.value}`);
  const indexes: number[] = [];
  let offset = count.offset;
  for (let i = 0; i < count.value; i++) {
    const next = readVarint(payload, offset);
    if (next.value < 0) throw new ParityError('PARITY_DECODE', `negative message index ${next.value}`);
    indexes.push(next.value);
    offset = next.offset;
  }
  return { indexes, message: payload.subarray(offset) };
}

/** A whole framed value: header, message indexes, message. */
export function frameProtobuf(schemaId: number, indexes: readonly number[], message: Uint8Array): Buffer {
  const idx = encodeMessageIndexes(indexes);
  const out = Buffer.allocUnsafe(5 + idx.length + message.length);
  out.writeUInt8(MAGIC_BYTE, 0);
  out.writeUInt32BE(schemaId, 1);
  idx.copy(out, 5);
  out.set(message, 5 + idx.length);
  return out;
}

/** Splits a framed value; PARITY_DECODE when it is not in the wire format. */
export function unframeProtobuf(value: Buffer): { schemaId: number; indexes: number[]; message: Buffer } {
  if (value.length < 6 || value.readUInt8(0) !== MAGIC_BYTE)
    throw new ParityError('PARITY_DECODE', 'not a Confluent wire-format Protobuf value (magic byte 0, schema id, message indexes)');
  return { schemaId: value.readUInt32BE(1), ...decodeMessageIndexes(value.subarray(5)) };
}
