/**
 * The change event every producer and consumer of parity agrees on: a Debezium-compatible envelope
 * plus headers carrying the dedupe key. Producers live in connectors/, consumers in services/.
 */
import type { Position } from './lsn.js';
import { decodePosition, encodePosition, formatLsn, parseLsn } from './lsn.js';

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

export function positionHeaders(p: Position, txId: number | null, commitTimeUs: bigint): Record<string, string> {
  return {
    [HEADERS.commitLsn]: formatLsn(p.commitLsn),
    [HEADERS.ordinal]: String(p.ordinal),
    [HEADERS.txId]: txId === null ? '' : String(txId),
    [HEADERS.position]: encodePosition(p),
    [HEADERS.commitTimeUs]: commitTimeUs.toString(),
  };
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

/** Topic for a table's change events: `<prefix>.<schema>.<table>` (Debezium's convention). */
export function changeTopic(prefix: string, schema: string, table: string): string {
  return `${prefix}.${schema}.${table}`;
}
