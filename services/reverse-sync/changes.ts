/**
 * Turns the reverse slot's pgoutput messages into committed transactions of keys to bring over:
 * which keys of the new representation changed, the transaction's position `(commit LSN, last
 * ordinal)`, whether it is reverse sync's own write (its replication origin: dropped, no echo), and
 * whether it carries a rollback's flip marker. Pure: no I/O.
 */
import { columnText } from '../../connectors/postgres-source/pgoutput-rows.js';
import type { PgoutputMessage } from '../../connectors/postgres-source/replication-stream.js';
import { type Lsn, parseLsn } from '../core/lsn.js';

export interface KeyedChange {
  /** The key's values as text, in key order. */
  values: string[];
  /** The key's last change in the transaction was a delete. */
  deleted: boolean;
}

export interface CommittedTransaction {
  /** The transaction's id as pgoutput's Begin carries it (32 bits): to wait until it is visible. */
  xid: number;
  commitLsn: Lsn;
  /** End of the commit record: what the slot may be confirmed to once this transaction is applied. */
  commitEndLsn: Lsn;
  /** Ordinal of the transaction's last change (0 when it had none); with commitLsn, the dedupe position. */
  lastOrdinal: number;
  /** Commit time, ms since the epoch (for the lag). */
  commitTimeMs: number;
  /** Distinct keys of the watched table, by their joined text. */
  keys: Map<string, KeyedChange>;
  /** Changes dropped because reverse sync itself wrote them (its replication origin). */
  echoes: number;
  /** A rollback's flip marker for this migration was in the transaction. */
  flip: boolean;
}

export interface ChangeReaderOptions {
  /** The watched table (the new representation). */
  schema: string;
  table: string;
  key: string[];
  /** Reverse sync's replication origin: transactions with it are its own writes. */
  origin: string;
  /** A transactional logical message with this prefix and the migration as content is a flip marker. */
  flipPrefix: string;
  migration: string;
}

/** Feeds messages in WAL order; returns the transaction when a Commit completes one, else null. */
export class ChangeReader {
  private current: {
    xid: number;
    commitLsn: Lsn;
    commitTimeMs: number;
    ordinal: number;
    origin: string | null;
    keys: Map<string, KeyedChange>;
    echoes: number;
    flip: boolean;
  } | null = null;

  constructor(private readonly options: ChangeReaderOptions) {}

  push(message: PgoutputMessage): CommittedTransaction | null {
    switch (message.tag) {
      case 'begin':
        this.current = {
          xid: message.xid,
          commitLsn: parseLsn(message.commitLsn ?? '0/0'),
          commitTimeMs: Number(message.commitTime) / 1000,
          ordinal: 0,
          origin: null,
          keys: new Map(),
          echoes: 0,
          flip: false,
        };
        return null;
      case 'origin':
        if (this.current) this.current.origin = message.originName;
        return null;
      case 'insert':
      case 'update':
      case 'delete': {
        const tx = this.current;
        if (!tx) return null;
        tx.ordinal++;
        const rel = message.relation;
        if (rel.schema !== this.options.schema || rel.name !== this.options.table) return null;
        if (tx.origin === this.options.origin) {
          tx.echoes++;
          return null;
        }
        const row = message.tag === 'delete' ? (message.key ?? message.old) : message.new;
        if (!row) return null;
        const values = this.options.key.map((k) => {
          const v = columnText(rel, row, k);
          if (v === undefined || v === null)
            throw new Error(`a ${message.tag} on ${rel.schema}.${rel.name} has no value for key column ${k}`);
          return String(v);
        });
        tx.keys.set(values.join('\u001f'), { values, deleted: message.tag === 'delete' });
        return null;
      }
      case 'message':
        if (
          this.current &&
          message.prefix === this.options.flipPrefix &&
          Buffer.from(message.content).toString('utf8') === this.options.migration
        )
          this.current.flip = true;
        return null;
      case 'commit': {
        const tx = this.current;
        this.current = null;
        if (!tx) return null;
        return {
          xid: tx.xid,
          commitLsn: tx.commitLsn,
          commitEndLsn: parseLsn(message.commitEndLsn ?? '0/0'),
          lastOrdinal: tx.ordinal,
          commitTimeMs: tx.commitTimeMs,
          keys: tx.keys,
          echoes: tx.echoes,
          flip: tx.flip,
        };
      }
      default:
        return null;
    }
  }
}
