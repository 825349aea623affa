/**
 * The dialect seam: every piece of SQL whose spelling depends on the database engine. Batch
 * verification only talks to a side through a `Dialect`, so a MySQL/MariaDB target later means a
 * second implementation of this interface (MD5(), QUOTE(), CONCAT_WS, a consistent-snapshot
 * START TRANSACTION, @@gtid_executed as the position), not changes across the verifier.
 */
import type pg from 'pg';
import { literal } from '../core/sql.js';
import { familyOf, sqlNormalize, type ColumnType, type Rule } from './normalize.js';

type Queryable = Pick<pg.ClientBase, 'query'>;

/** How a key column is ordered: natively (its own collation, index-friendly) or by bytes. */
export interface KeyOrder {
  /** Add COLLATE "C" to comparisons and ORDER BY: the two sides' collations are not provably equal. */
  byteOrder: boolean;
  /** Without COLLATE "C" the key already orders by bytes (C or POSIX on both sides, or no collation). */
  nativeIsBytes: boolean;
}

/** A collation as far as ordering goes; equal descriptors on both sides order text identically. */
export interface CollationInfo {
  provider: string;
  locale: string;
  version: string;
  deterministic: boolean;
}

export interface Dialect {
  readonly name: string;
  /** Statements run once per verification session: stable text output, read-only by default. */
  sessionSetup(): string[];
  /** Starts a consistent read-only snapshot and returns the position it corresponds to. */
  beginSnapshot(db: Queryable): Promise<string>;
  /** Starts a snapshot another session of the same database can adopt. */
  beginExportedSnapshot(db: Queryable): Promise<{ snapshot: string; position: string }>;
  /** Adopts an exported snapshot: both sessions then see exactly the same data. */
  beginImportedSnapshot(db: Queryable, snapshot: string): Promise<void>;
  /** Canonical text of an expression of `type` under `rule` (see normalize.ts). */
  normalize(expr: string, type: ColumnType, rule: Rule): string;
  /**
   * One unambiguous text of a tuple of canonical texts (NULL-safe, separator-safe). A piece marked
   * `plain` can never contain the separator, a quote or the NULL marker (numbers, timestamps, uuids,
   * booleans, hex), so it skips the quoting.
   */
  tupleText(pieces: Array<{ sql: string; plain: boolean }>): string;
  /**
   * The row identity used by exact diffs, rechecks and repairs: a 128-bit hash of a tuple text, as
   * text. Both sides must use the same one (two PostgreSQL sides: the checksum pair below; with
   * another engine: MD5, which every engine has).
   */
  rowIdentity(text: string): string;
  /** The two checksum hashes inside a row identity (so streamed rows can be summed in JS). */
  identityHalves(identity: string): [bigint, bigint];
  /** Exact sums of the two halves of many row identities (a merged segment's checksums), faster than adding `identityHalves`. */
  identitySums(): IdentitySums;
  /**
   * Two independent signed 64-bit hashes of a tuple text, summed per segment. Both sides must use
   * the same pair: two PostgreSQL sides use the fast seeded hashes below; a future pairing with
   * another engine would fall back to the two 64-bit halves of MD5, which every engine has.
   */
  checksumHashes(text: string): [string, string];
  /**
   * SQL text naming the stored version of a row of a plain table (a new one for every insert or
   * update of the row), or null when the engine has none. Two reads whose row versions are all
   * equal read the same rows (recheck.ts uses it to confirm a dense segment without diffing it again).
   */
  rowVersion(): string | null;
  /** A key (SQL of the column in its common type, see key-type.ts) as compared and ordered. */
  orderedKey(expr: string, order: KeyOrder): string;
  /** Byte-order collation clause for ORDER BY on canonical texts. */
  byteCollate(expr: string): string;
  describeType(db: Queryable, oid: number, typmod: number): Promise<ColumnType>;
  /** The collation of a table column, or null when its type has none. */
  columnCollation(db: Queryable, schema: string, table: string, column: string): Promise<CollationInfo | null>;
}

/** Collations that order by bytes whatever the platform. */
const BYTE_ORDER_LOCALES = new Set(['C', 'POSIX', 'ucs_basic']);

/** Sums of the two checksum hashes of row identities, added one identity at a time. */
export interface IdentitySums {
  add(identity: string): void;
  sums(): [bigint, bigint];
}

/**
 * Exact sum of signed 64-bit integers written in decimal, in doubles: each is split into its last 9
 * digits and the rest, both exact as doubles, summed apart and carried into a bigint before the
 * sums could pass 2^53 (at most 2^53 / 1e10 additions). Several times faster than a BigInt per value.
 */
export class DecimalSum {
  private high = 0;
  private low = 0;
  private count = 0;
  private total = 0n;

  /** Adds the integer written in `text` from `start` to `end` (an optional '-', then digits). */
  add(text: string, start: number, end: number): void {
    const negative = text.charCodeAt(start) === 45;
    const first = negative ? start + 1 : start;
    const split = Math.max(first, end - 9);
    let high = 0;
    for (let i = first; i < split; i++) high = high * 10 + (text.charCodeAt(i) - 48);
    let low = 0;
    for (let i = split; i < end; i++) low = low * 10 + (text.charCodeAt(i) - 48);
    if (negative) {
      this.high -= high;
      this.low -= low;
    } else {
      this.high += high;
      this.low += low;
    }
    if (++this.count === 500_000) this.carry();
  }

  private carry(): void {
    this.total += BigInt(this.high) * 1_000_000_000n + BigInt(this.low);
    this.high = 0;
    this.low = 0;
    this.count = 0;
  }

  value(): bigint {
    this.carry();
    return this.total;
  }
}

export const postgresDialect: Dialect = {
  name: 'postgresql',

  sessionSetup() {
    return [
      // Text output of dates, floats and bytea depends on these; both sides must print alike.
      "SET DateStyle TO 'ISO, YMD'",
      "SET TimeZone TO 'UTC'",
      "SET IntervalStyle TO 'postgres'",
      'SET extra_float_digits TO 1',
      "SET bytea_output TO 'hex'",
      // Every verification query is read-only, even outside the explicit snapshot transactions.
      'SET default_transaction_read_only TO on',
    ];
  },

  async beginSnapshot(db) {
    await db.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    // The snapshot is taken by this first statement, so the position read here is at or after
    // every commit the snapshot sees. A standby reports how far it has replayed instead.
    const { rows } = await db.query(
      `SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text AS position`,
    );
    return String(rows[0].position);
  },

  async beginExportedSnapshot(db) {
    await db.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const { rows } = await db.query(
      `SELECT pg_export_snapshot() AS snapshot, (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text AS position`,
    );
    return { snapshot: String(rows[0].snapshot), position: String(rows[0].position) };
  },

  async beginImportedSnapshot(db, snapshot) {
    await db.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    await db.query(`SET TRANSACTION SNAPSHOT ${literal(snapshot)}`);
  },

  normalize: sqlNormalize,

  tupleText(pieces) {
    // quote_nullable gives 'text' (quotes doubled) or the bare word NULL, so no two tuples collide;
    // plain pieces cannot contain ",", "'" or "~", so "~" marks their NULL unambiguously.
    return `concat_ws(',', ${pieces.map((p) => (p.plain ? `coalesce(${p.sql}, '~')` : `quote_nullable(${p.sql})`)).join(', ')})`;
  },

  rowIdentity(text) {
    // The two seeded hashes side by side: 128 bits, several times cheaper than MD5 per row.
    const [a, b] = postgresDialect.checksumHashes(text);
    return `(${a}::text || '/' || ${b}::text)`;
  },

  identityHalves(identity) {
    const slash = identity.indexOf('/');
    return [BigInt(identity.slice(0, slash)), BigInt(identity.slice(slash + 1))];
  },

  identitySums() {
    const a = new DecimalSum();
    const b = new DecimalSum();
    return {
      add(identity) {
        const slash = identity.indexOf('/');
        a.add(identity, 0, slash);
        b.add(identity, slash + 1, identity.length);
      },
      sums: () => [a.value(), b.value()],
    };
  },

  rowVersion() {
    // The tuple's table (partitions), place and writing transaction: an update or a re-insert
    // changes them (xmin survives freezing; a table rewrite moves ctid, which only reads as "changed").
    return `tableoid::text || ':' || ctid::text || ':' || xmin::text`;
  },

  checksumHashes(t) {
    // Seeded Jenkins hashes, several times cheaper than MD5; COLLATE "C" makes them hash bytes even
    // when a key column carries a non-deterministic collation.
    return [`hashtextextended(${t} COLLATE "C", 0)`, `hashtextextended(${t} COLLATE "C", 1)`];
  },

  orderedKey(expr, order) {
    return order.byteOrder ? `${expr} COLLATE "C"` : expr;
  },

  byteCollate(expr) {
    return `${expr} COLLATE "C"`;
  },

  async describeType(db, oid, typmod) {
    let current = oid;
    let mod = typmod;
    // Domains compare as their base type.
    for (let depth = 0; depth < 10; depth++) {
      const { rows } = await db.query(
        `SELECT typtype, typbasetype::int AS base, typtypmod AS basemod, typcategory, format_type(oid, $2) AS name,
                CASE WHEN oid = 1042 THEN 'bpchar' ELSE format_type(oid, NULL) END AS cast_name FROM pg_type WHERE oid = $1`,
        [current, mod],
      );
      const row = rows[0];
      if (!row) return { name: 'text', castName: 'text', family: 'other', precision: null };
      if (row.typtype === 'd') {
        current = Number(row.base);
        if (mod < 0) mod = Number(row.basemod);
        continue;
      }
      const family = familyOf(current, String(row.typcategory), row.typtype === 'e');
      const precision = family === 'timestamp' || family === 'timestamptz' ? (mod >= 0 ? mod : 6) : null;
      return { name: String(row.name), castName: String(row.cast_name), family, precision };
    }
    return { name: 'text', castName: 'text', family: 'other', precision: null };
  },

  async columnCollation(db, schema, table, column) {
    const { rows } = await db.query(
      `SELECT a.attcollation::int AS coll, to_jsonb(c) AS c, (SELECT to_jsonb(d) FROM pg_database d WHERE d.datname = current_database()) AS d
         FROM pg_attribute a LEFT JOIN pg_collation c ON c.oid = a.attcollation
        WHERE a.attrelid = (quote_ident($1) || '.' || quote_ident($2))::regclass AND a.attname = $3`,
      [schema, table, column],
    );
    const row = rows[0];
    if (!row || Number(row.coll) === 0) return null;
    const c = row.c as Record<string, unknown> | null;
    const d = row.d as Record<string, unknown>;
    // Column names differ across versions (colliculocale in 15-16, colllocale from 17); to_jsonb reads whichever exists.
    if (Number(row.coll) === 100 || !c) {
      const provider = String(d.datlocprovider ?? 'c');
      const locale = String(provider === 'i' ? (d.daticulocale ?? d.datlocale ?? '') : (d.datcollate ?? ''));
      return { provider, locale, version: String(d.datcollversion ?? ''), deterministic: true };
    }
    const provider = String(c.collprovider);
    const name = String(c.collname);
    const locale = BYTE_ORDER_LOCALES.has(name)
      ? name
      : String(provider === 'i' ? (c.colliculocale ?? c.colllocale ?? '') : (c.collcollate ?? ''));
    return { provider, locale, version: String(c.collversion ?? ''), deterministic: c.collisdeterministic !== false };
  },
};

/** True when a collation orders text by bytes on any platform. */
export function isByteOrder(c: CollationInfo): boolean {
  return c.provider !== 'i' && BYTE_ORDER_LOCALES.has(c.locale);
}

/**
 * Chooses how a key column is ordered on both sides: natively only when both sides provably
 * order alike (no collation, both byte order, or the same deterministic collation and version);
 * otherwise by bytes (COLLATE "C"), which is correct everywhere but cannot use a non-C index.
 */
export function chooseKeyOrder(a: CollationInfo | null, b: CollationInfo | null): KeyOrder {
  if (a === null && b === null) return { byteOrder: false, nativeIsBytes: true };
  if (a === null || b === null) return { byteOrder: true, nativeIsBytes: false };
  if (isByteOrder(a) && isByteOrder(b)) return { byteOrder: false, nativeIsBytes: true };
  const same = a.provider === b.provider && a.locale === b.locale && a.version === b.version && a.deterministic && b.deterministic;
  return { byteOrder: !same, nativeIsBytes: false };
}
