/**
 * The change event every producer and consumer of parity agrees on: a Debezium-compatible envelope
 * plus headers carrying the dedupe key. Producers live in connectors/, consumers in services/.
 */
import type { Lsn, Position } from './lsn.js';
import { decodePosition, formatLsn, parseLsn, positionCommitPart, positionOrdinalPart } from './lsn.js';

export type Op = 'c' | 'u' | 'd' | 'r' | 't';

/** Stands for an unchanged TOASTed value that PostgreSQL did not send (Debezium's placeholder). */
export const UNCHANGED_TOAST = '__debezium_unavailable_value';

/** A decoded row: column name to its exact text-preserving value (see connectors/postgres-source). */
export type Row = Record<string, unknown>;

export interface SourceInfo {
  version: string;
  connector: 'postgresql';
  name: string;
  db: string;
  schema: string;
  table: string;
  /** Change LSN as a decimal string number (Debezium uses a number). */
  lsn: number;
  txId: number | null;
  /** Commit time in milliseconds since the epoch. */
  ts_ms: number;
  /** Commit time in microseconds, exact. */
  ts_us: number;
  snapshot: 'true' | 'false' | 'last' | 'incremental';
  /** Commit LSN and ordinal, the dedupe key, as "commitLsn:ordinal" text (e.g. "0/16B3748:3"). */
  sequence: string;
}

export interface ChangeEnvelope {
  before: Row | null;
  after: Row | null;
  op: Op;
  /** When parity processed the change (connector clock), milliseconds. */
  ts_ms: number;
  source: SourceInfo;
}

/** Kafka header names carried on every change event. */
export const HEADERS = {
  commitLsn: 'parity.commit_lsn',
  ordinal: 'parity.ordinal',
  txId: 'parity.txid',
  position: 'parity.position',
  commitTimeUs: 'parity.commit_time_us',
} as const;

/**
 * The wire identity of one transaction's events, built once per transaction: the position headers
 * and Debezium's `source.sequence` of each event differ only by the ordinal. The only place that
 * writes these texts (readers: positionFromHeaders, positionFromSequence).
 */
export class TransactionPositions {
  /** "0/16B3748" */
  readonly commitLsnText: string;
  private readonly commitPart: string;
  private readonly constant: { commitLsn: Buffer; txId: Buffer; commitTimeUs: Buffer };

  constructor(
    readonly commitLsn: Lsn,
    txId: number | null,
    commitTimeUs: bigint,
  ) {
    this.commitLsnText = formatLsn(commitLsn);
    this.commitPart = positionCommitPart(commitLsn);
    this.constant = {
      commitLsn: Buffer.from(this.commitLsnText),
      txId: Buffer.from(txId === null ? '' : String(txId)),
      commitTimeUs: Buffer.from(commitTimeUs.toString()),
    };
  }

  /** The position headers of the event with this ordinal (constant values shared as Buffers). */
  headers(ordinal: number): Record<string, string | Buffer> {
    return {
      [HEADERS.commitLsn]: this.constant.commitLsn,
      [HEADERS.ordinal]: String(ordinal),
      [HEADERS.txId]: this.constant.txId,
      [HEADERS.position]: this.commitPart + positionOrdinalPart(ordinal),
      [HEADERS.commitTimeUs]: this.constant.commitTimeUs,
    };
  }

  /** `source.sequence`: "<commit LSN>:<ordinal>", e.g. "0/16B3748:3". */
  sequence(ordinal: number): string {
    return `${this.commitLsnText}:${ordinal}`;
  }
}

/** The position headers of one change event (see TransactionPositions for many of one transaction). */
export function positionHeaders(p: Position, txId: number | null, commitTimeUs: bigint): Record<string, string | Buffer> {
  return new TransactionPositions(p.commitLsn, txId, commitTimeUs).headers(p.ordinal);
}

/** Reads a position back from `source.sequence` ("0/16B3748:3"), or null when absent or malformed. */
export function positionFromSequence(sequence: string | undefined | null): Position | null {
  if (!sequence) return null;
  const match = /^([0-9A-Fa-f]+)\/([0-9A-Fa-f]+):(\d+)$/.exec(sequence);
  if (!match) return null;
  return { commitLsn: (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`), ordinal: Number(match[3]) };
}

/** Reads the dedupe key back from Kafka message headers (values may be Buffers or strings). */
export function positionFromHeaders(headers: Record<string, unknown> | undefined): Position | null {
  const raw = headers?.[HEADERS.position];
  if (raw === undefined || raw === null) {
    const lsn = headers?.[HEADERS.commitLsn];
    const ord = headers?.[HEADERS.ordinal];
    if (lsn === undefined || ord === undefined) return null;
    return { commitLsn: parseLsn(String(lsn)), ordinal: Number(String(ord)) };
  }
  return decodePosition(String(raw));
}

/** Topic names have one home, services/core/topics.ts; re-exported for the change-event readers. */
export { changeTopic } from './topics.js';
