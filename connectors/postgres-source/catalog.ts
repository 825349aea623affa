/**
 * Catalog lookups the source needs: what each column type decodes to (following domains and arrays),
 * a table's primary key, and its replica identity. Results for type OIDs are cached per process; a
 * Relation message re-resolves its table's key each time (tables change during expand).
 */
import type pg from 'pg';
import { ParityError } from '../../services/core/errors.js';
import type { EventEncoding } from '../../services/core/table-shape.js';
import { DEBEZIUM_TYPE_DEFAULTS, type DebeziumTypeOptions } from './debezium-types.js';
import { type ResolvedType, scalarKind } from './value-decoder.js';

type Queryable = Pick<pg.ClientBase, 'query'>;

/** Built-in OIDs that need no lookup: their kind is fixed and their name known. */
const BUILTIN_NAMES: ReadonlyMap<number, string> = new Map([
  [16, 'bool'],
  [17, 'bytea'],
  [20, 'int8'],
  [21, 'int2'],
  [23, 'int4'],
  [25, 'text'],
  [700, 'float4'],
  [701, 'float8'],
  [1042, 'bpchar'],
  [1043, 'varchar'],
  [1082, 'date'],
  [1083, 'time'],
  [1114, 'timestamp'],
  [1184, 'timestamptz'],
  [1186, 'interval'],
  [1266, 'timetz'],
  [1700, 'numeric'],
  [2950, 'uuid'],
  [114, 'json'],
  [3802, 'jsonb'],
]);

/** Vector types with typelem set whose text is not array syntax ("1 2 3"). */
const NOT_ARRAYS = new Set([22, 30]);

interface TypeRow {
  oid: number;
  typname: string;
  typtype: string;
  typbasetype: number;
  typelem: number;
  typcategory: string;
  typtypmod: number;
  /** The separator of this type's elements in an array's text (`;` for box). */
  typdelim: string;
  labels: string[] | null;
}

/** How the source turns column text into event values (spec.cdc.encoding and spec.cdc.debezium). */
export interface SourceEncoding {
  encoding: EventEncoding;
  debezium: DebeziumTypeOptions;
}

export const EXACT_TEXT: SourceEncoding = { encoding: 'exact-text', debezium: DEBEZIUM_TYPE_DEFAULTS };

export class TypeResolver {
  private readonly cache = new Map<number, ResolvedType>();

  /** `encoding` travels with the resolver so every relation built from it converts alike. */
  constructor(
    private readonly db: Queryable,
    readonly encoding: SourceEncoding = EXACT_TEXT,
  ) {}

  /** Resolves every OID (domains to their base type, arrays to their element kind). */
  async resolve(oids: number[]): Promise<Map<number, ResolvedType>> {
    const out = new Map<number, ResolvedType>();
    for (const oid of oids) {
      const name = BUILTIN_NAMES.get(oid);
      if (name) out.set(oid, { kind: scalarKind(oid), array: false, name });
    }
    const missing = oids.filter((o) => !out.has(o) && !this.cache.has(o));
    if (missing.length > 0) await this.load(missing);
    for (const oid of oids) if (!out.has(oid)) out.set(oid, this.cache.get(oid)!);
    return out;
  }

  private async load(oids: number[]): Promise<void> {
    const rows = new Map<number, TypeRow>();
    let wanted = [...new Set(oids)];
    // Domains and arrays point at other types; follow them until every reference is loaded.
    while (wanted.length > 0) {
      const { rows: found } = await this.db.query<TypeRow>(
        `SELECT t.oid::int AS oid, t.typname, t.typtype, t.typbasetype::int AS typbasetype, t.typelem::int AS typelem, t.typcategory,
                t.typtypmod, t.typdelim::text AS typdelim,
                CASE WHEN t.typtype = 'e' THEN ARRAY(SELECT e.enumlabel::text FROM pg_catalog.pg_enum e
                                                      WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder) END AS labels
           FROM pg_catalog.pg_type t WHERE t.oid = ANY($1::oid[])`,
        [wanted],
      );
      for (const r of found) rows.set(r.oid, r);
      const next = new Set<number>();
      for (const r of found) {
        for (const ref of [r.typbasetype, r.typelem]) if (ref !== 0 && !rows.has(ref) && !BUILTIN_NAMES.has(ref)) next.add(ref);
      }
      for (const o of wanted) if (!rows.has(o)) throw new ParityError('PARITY_DECODE', `type OID ${o} is not in pg_type`);
      wanted = [...next];
    }
    const resolveOne = (oid: number, depth = 0): ResolvedType => {
      const builtin = BUILTIN_NAMES.get(oid);
      if (builtin) return { kind: scalarKind(oid), array: false, name: builtin };
      const cached = this.cache.get(oid);
      if (cached) return cached;
      const r = rows.get(oid);
      if (!r || depth > 16) return { kind: 'string', array: false, name: r?.typname ?? String(oid) };
      let resolved: ResolvedType;
      if (r.typtype === 'd') {
        const base = resolveOne(r.typbasetype, depth + 1);
        resolved = {
          ...base,
          name: r.typname,
          baseName: base.baseName ?? base.name,
          ...(r.typtypmod >= 0 ? { domainTypmod: r.typtypmod } : {}),
        };
      } else if (r.typcategory === 'A' && r.typelem !== 0 && !NOT_ARRAYS.has(oid)) {
        const element = resolveOne(r.typelem, depth + 1);
        resolved = {
          kind: element.kind,
          array: true,
          name: `${element.name}[]`,
          baseName: element.baseName ?? element.name,
          enumLabels: element.enumLabels ?? null,
          // array_out separates elements by the element type's typdelim, not always a comma.
          delimiter: rows.get(r.typelem)?.typdelim ?? ',',
        };
      } else {
        resolved = { kind: scalarKind(oid), array: false, name: r.typname, baseName: r.typname, enumLabels: r.labels };
      }
      this.cache.set(oid, resolved);
      return resolved;
    };
    for (const oid of oids) resolveOne(oid);
  }
}

export interface TableInfo {
  oid: number;
  schema: string;
  table: string;
  /** d = default, n = nothing, f = full, i = index. */
  replicaIdentity: 'd' | 'n' | 'f' | 'i';
  primaryKey: string[];
  /** Columns of the replica identity index when REPLICA IDENTITY USING INDEX. */
  identityIndexColumns: string[];
  /** Columns in table order with their type OIDs and catalog facts. */
  columns: ({ name: string; typeOid: number } & ColumnCatalogFacts)[];
}

/** What pg_attribute and pg_attrdef say about a column (Debezium's schema needs them). */
export interface ColumnCatalogFacts {
  /** pg_attribute.atttypmod (-1: none). */
  typmod: number;
  notNull: boolean;
  /** pg_get_expr of the column default, or null. */
  defaultExpr: string | null;
}

const COLUMN_FACTS = `
  SELECT a.attname, a.atttypid::int AS atttypid, a.atttypmod, a.attnotnull, pg_catalog.pg_get_expr(d.adbin, d.adrelid) AS default_expr
    FROM pg_catalog.pg_attribute a
    LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
   WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' ORDER BY a.attnum`;

interface ColumnFactsRow {
  attname: string;
  atttypid: number;
  atttypmod: number;
  attnotnull: boolean;
  default_expr: string | null;
}

/** The catalog facts of a relation's columns by name (read at start and on each Relation message). */
export async function columnFacts(db: Queryable, relationOid: number): Promise<Map<string, ColumnCatalogFacts>> {
  const { rows } = await db.query<ColumnFactsRow>(COLUMN_FACTS, [relationOid]);
  return new Map(rows.map((r) => [r.attname, { typmod: r.atttypmod, notNull: r.attnotnull, defaultExpr: r.default_expr }]));
}

const INDEX_COLUMNS = `
  SELECT a.attname FROM pg_catalog.pg_index i
    CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
    JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
   WHERE i.indrelid = $1 AND %COND%
   ORDER BY k.ord`;

/** A table's identity and columns, or null when it does not exist. */
export async function tableInfo(db: Queryable, schema: string, table: string): Promise<TableInfo | null> {
  const { rows } = await db.query<{ oid: number; relreplident: TableInfo['replicaIdentity'] }>(
    `SELECT c.oid::int AS oid, c.relreplident FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`,
    [schema, table],
  );
  const row = rows[0];
  if (!row) return null;
  const pk = await db.query<{ attname: string }>(INDEX_COLUMNS.replace('%COND%', 'i.indisprimary'), [row.oid]);
  const ri = await db.query<{ attname: string }>(INDEX_COLUMNS.replace('%COND%', 'i.indisreplident'), [row.oid]);
  const cols = await db.query<ColumnFactsRow>(COLUMN_FACTS, [row.oid]);
  return {
    oid: row.oid,
    schema,
    table,
    replicaIdentity: row.relreplident,
    primaryKey: pk.rows.map((r) => r.attname),
    identityIndexColumns: ri.rows.map((r) => r.attname),
    columns: cols.rows.map((r) => ({
      name: r.attname,
      typeOid: r.atttypid,
      typmod: r.atttypmod,
      notNull: r.attnotnull,
      defaultExpr: r.default_expr,
    })),
  };
}

/** The Kafka key columns of a relation: the primary key, else the replica identity index, else none. */
export async function keyColumnsOf(db: Queryable, relationOid: number): Promise<string[]> {
  const pk = await db.query<{ attname: string }>(INDEX_COLUMNS.replace('%COND%', 'i.indisprimary'), [relationOid]);
  if (pk.rows.length > 0) return pk.rows.map((r) => r.attname);
  const ri = await db.query<{ attname: string }>(INDEX_COLUMNS.replace('%COND%', 'i.indisreplident'), [relationOid]);
  return ri.rows.map((r) => r.attname);
}
