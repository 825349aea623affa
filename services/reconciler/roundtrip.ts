/**
 * `parity spec check-roundtrip` (issue 23): on a sample of real source rows, does the reverse
 * mapping rebuild the old representation from what the forward mapping makes of it? Both mappings
 * are SQL, so the whole check is one read-only SELECT inside the source database: the mapping
 * expressions over each sampled row give the new row, the reverse expressions over that new row give
 * the old columns back, and each is compared with the row as it is.
 */
import type pg from 'pg';
import { ParityError, fromPgError } from '../core/errors.js';
import { ident, qualified } from '../core/sql.js';
import type { Spec } from '../core/spec.js';

/** Rows sampled when `--sample` is not given. */
export const DEFAULT_ROUNDTRIP_SAMPLE = 10_000;
/** Mismatching rows (and unrepresentable keys) listed at most; the counts are always exact. */
export const ROUNDTRIP_LIST_LIMIT = 100;

/**
 * Column names whose values are never printed (only that they differ): passwords, secrets, tokens,
 * keys, credentials, card and account numbers. The key is printed: it is what identifies the row.
 */
export function looksSecret(column: string): boolean {
  return /pass(word|wd)?|pwd|secret|token|api_?key|private_?key|credential|salt|hash|ssn|card|cvv|iban|account_?number|\bpin\b/i.test(
    column,
  );
}

/** A column of the source table, with its type as `format_type` prints it. */
export interface SourceColumn {
  name: string;
  type: string;
}

/** One old column that did not come back as it was. `row`/`roundTrip` are null when the column looks secret. */
export interface RoundtripDiff {
  column: string;
  row: string | null;
  roundTrip: string | null;
  redacted: boolean;
}

export interface RoundtripResult {
  /** `schema.table` of the source. */
  table: string;
  key: string[];
  sampleLimit: number;
  /** How the rows were chosen: the whole table (up to the limit) or a Bernoulli sample of this percentage. */
  samplePercent: number | null;
  sampled: number;
  /** Rows outside `reverse.representable` (not checked), and the policy for them. */
  unrepresentable: { count: number; policy: 'refuse' | 'record'; keys: string[][] };
  /** Representable rows where reverse(mapping(row)) != row, with the first ROUNDTRIP_LIST_LIMIT listed. */
  mismatched: number;
  rows: { key: string[]; diffs: RoundtripDiff[] }[];
  /** True when the round trip is the identity on every sampled representable row. */
  passed: boolean;
}

const P = 'parity_rt_';

/**
 * The one SELECT of the check (pure, for tests). `columns` are the source table's columns: a
 * same-table migration's new row also carries the columns neither mapping touches (they are in both
 * representations). Every identifier goes through the driver's escaping; the expressions are the
 * spec's, already checked by its parser rules (one scalar expression each).
 */
export function roundtripSql(spec: Spec, columns: readonly SourceColumn[], sample: { limit: number; percent: number | null }): string {
  const reverse = spec.reverse;
  if (!reverse) throw new Error('roundtripSql needs a spec with reverse');
  const rebuilt = Object.keys(reverse.mapping);
  const types = new Map(columns.map((c) => [c.name, c.type]));
  const s = (c: string) => `s.${ident(c)}`;
  // The new row: the key (as mapped, when a shadow or remote table remaps it), the mapped columns,
  // and for a same-table migration the untouched columns; never the old columns being rebuilt.
  const newRow: string[] = [];
  for (const k of spec.key) if (!(k in spec.mapping)) newRow.push(`${s(k)} AS ${ident(k)}`);
  for (const [column, expr] of Object.entries(spec.mapping)) newRow.push(`(${expr}) AS ${ident(column)}`);
  if (spec.target.kind === 'same-table') {
    for (const c of columns)
      if (!spec.key.includes(c.name) && !(c.name in spec.mapping) && !(c.name in reverse.mapping))
        newRow.push(`${s(c.name)} AS ${ident(c.name)}`);
  }
  // Carried beside the new row under names of our own: the key's text and order, the old values.
  const carried = [
    ...spec.key.map((k, i) => `${s(k)}::text AS ${P}key_${i}, ${s(k)} AS ${P}ord_${i}`),
    ...rebuilt.map((c, i) => `${s(c)}::text AS ${P}old_${i}`),
  ];
  // The reverse value is cast to the old column's type, as writing it there would, and compared as
  // that type's text: what the old column would hold, scale and all.
  const reversed = rebuilt.map((c, i) => {
    const type = types.get(c);
    if (!type) throw new Error(`no type for ${c}`);
    return `((${reverse.mapping[c]})::${type})::text AS ${P}new_${i}`;
  });
  const representable = reverse.representable === undefined ? 'true' : `coalesce((${reverse.representable}), false)`;
  const keyCols = spec.key.map((_, i) => `${P}key_${i}`);
  const orderBy = spec.key.map((_, i) => `${P}ord_${i}`).join(', ');
  const differs = rebuilt.map((_, i) => `${P}new_${i} IS DISTINCT FROM ${P}old_${i}`);
  const listed = rebuilt.map((c, i) =>
    looksSecret(c)
      ? `NULL::text AS ${P}old_${i}, NULL::text AS ${P}new_${i}, ${differs[i]} AS ${P}diff_${i}`
      : `${P}old_${i}, ${P}new_${i}, ${differs[i]} AS ${P}diff_${i}`,
  );
  const tablesample = sample.percent === null ? '' : ` TABLESAMPLE BERNOULLI (${sample.percent})`;
  return `WITH s AS MATERIALIZED (
  SELECT * FROM ${qualified(spec.source.schema, spec.source.table)}${tablesample} LIMIT ${sample.limit}
), n AS (
  SELECT ${[...newRow, ...carried].join(', ')} FROM s
), r AS MATERIALIZED (
  SELECT ${[...keyCols, ...spec.key.map((_, i) => `${P}ord_${i}`), ...rebuilt.map((_, i) => `${P}old_${i}`)].join(', ')},
    ${[...reversed, `${representable} AS ${P}rep`].join(', ')}
  FROM n
), bad AS (
  SELECT * FROM r WHERE ${P}rep AND (${differs.join(' OR ')})
)
SELECT (SELECT count(*) FROM r)::int AS sampled,
  (SELECT count(*) FROM r WHERE NOT ${P}rep)::int AS unrepresentable,
  (SELECT count(*) FROM bad)::int AS mismatched,
  (SELECT coalesce(json_agg(x), '[]') FROM (SELECT ${[...keyCols, ...listed].join(', ')} FROM bad ORDER BY ${orderBy} LIMIT ${ROUNDTRIP_LIST_LIMIT}) x) AS rows,
  (SELECT coalesce(json_agg(x), '[]') FROM (SELECT ${keyCols.join(', ')} FROM r WHERE NOT ${P}rep ORDER BY ${orderBy} LIMIT ${ROUNDTRIP_LIST_LIMIT}) x) AS unrepresentable_keys`;
}

/**
 * The sample: the whole table (up to `limit` rows) when its estimated size is at most twice the
 * limit, else a Bernoulli sample of about twice the limit (cut to `limit`), so a big table is not
 * read whole. A never-analyzed table (no estimate) is read up to the limit.
 */
export function samplePercent(estimatedRows: number, limit: number): number | null {
  if (!(estimatedRows > 2 * limit)) return null;
  return Math.min(100, Number(((200 * limit) / estimatedRows).toPrecision(6)));
}

/**
 * Runs the check in one REPEATABLE READ READ ONLY transaction on `db` (a session on the source
 * database). Bad input (no reverse section, an old column missing from the table, an expression
 * PostgreSQL refuses) is PARITY_BAD_INPUT.
 */
export async function checkRoundtrip(spec: Spec, db: pg.Client, options: { sample: number }): Promise<RoundtripResult> {
  const reverse = spec.reverse;
  if (!reverse)
    throw new ParityError('PARITY_BAD_INPUT', 'the spec has no reverse section, so there is no round trip to check', {
      hint: "add reverse: { mapping: { <old column>: <SQL over the new row> } } beside mapping (see the README's Reverse mapping)",
    });
  const table = `${spec.source.schema}.${spec.source.table}`;
  await db.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    const rel = qualified(spec.source.schema, spec.source.table);
    const meta = await db.query<{ name: string; type: string; estimate: number }>(
      `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, c.reltuples::float8 AS estimate
         FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
        WHERE c.oid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
      [rel],
    );
    if (meta.rows.length === 0)
      throw new ParityError('PARITY_BAD_INPUT', `the source table ${table} does not exist (or has no columns)`, {
        hint: 'check source.schema and source.table in the spec',
      });
    const names = new Set(meta.rows.map((r) => r.name));
    for (const column of [...spec.key, ...Object.keys(reverse.mapping)]) {
      if (!names.has(column))
        throw new ParityError(
          'PARITY_BAD_INPUT',
          `${table} has no column "${column}" (named in ${spec.key.includes(column) ? 'key' : `reverse.mapping`})`,
          {
            hint: "reverse.mapping names the old representation's columns, as they are in the source table",
          },
        );
    }
    const percent = samplePercent(Number(meta.rows[0]?.estimate ?? -1), options.sample);
    const sql = roundtripSql(spec, meta.rows, { limit: options.sample, percent });
    let row: {
      sampled: number;
      unrepresentable: number;
      mismatched: number;
      rows: Record<string, string | boolean | null>[];
      unrepresentable_keys: Record<string, string>[];
    };
    try {
      row = (await db.query(sql)).rows[0];
    } catch (err) {
      throw fromPgError(err, `the round trip query on ${table} failed (a mapping or reverse expression PostgreSQL refuses?)`);
    }
    const rebuilt = Object.keys(reverse.mapping);
    const keyOf = (r: Record<string, unknown>) => spec.key.map((_, i) => String(r[`${P}key_${i}`] ?? 'NULL'));
    return {
      table,
      key: spec.key,
      sampleLimit: options.sample,
      samplePercent: percent,
      sampled: row.sampled,
      unrepresentable: { count: row.unrepresentable, policy: reverse.unrepresentable, keys: row.unrepresentable_keys.map(keyOf) },
      mismatched: row.mismatched,
      rows: row.rows.map((r) => ({
        key: keyOf(r),
        diffs: rebuilt.flatMap((column, i) =>
          r[`${P}diff_${i}`] === true
            ? [
                {
                  column,
                  row: (r[`${P}old_${i}`] as string | null) ?? null,
                  roundTrip: (r[`${P}new_${i}`] as string | null) ?? null,
                  redacted: looksSecret(column),
                },
              ]
            : [],
        ),
      })),
      passed: row.mismatched === 0,
    };
  } finally {
    await db.query('ROLLBACK').catch(() => undefined);
  }
}

/** The result for people. */
export function formatRoundtrip(r: RoundtripResult): string {
  const keyText = (k: string[]) => `(${r.key.join(', ')})=(${k.join(', ')})`;
  const value = (v: string | null) => (v === null ? 'NULL' : JSON.stringify(v));
  const how = r.samplePercent === null ? `up to ${r.sampleLimit} rows` : `a ${r.samplePercent}% sample, at most ${r.sampleLimit} rows`;
  const lines = [`round trip reverse(mapping(row)) on ${r.table}: ${r.sampled} rows checked (${how})`];
  const policy =
    r.unrepresentable.policy === 'refuse'
      ? 'unrepresentable: refuse, so a cutover is refused while such rows exist'
      : 'unrepresentable: record, so they would be recorded';
  lines.push(`  outside reverse.representable: ${r.unrepresentable.count}${r.unrepresentable.count > 0 ? ` (${policy})` : ''}`);
  for (const k of r.unrepresentable.keys) lines.push(`    ${keyText(k)}`);
  if (r.unrepresentable.count > r.unrepresentable.keys.length)
    lines.push(`    ... and ${r.unrepresentable.count - r.unrepresentable.keys.length} more`);
  if (r.passed)
    lines.push(`  ok: the round trip is the identity on every representable row checked (${r.sampled - r.unrepresentable.count})`);
  else {
    lines.push(`  NOT the identity on ${r.mismatched} representable row(s):`);
    for (const row of r.rows) {
      const diffs = row.diffs.map((d) =>
        d.redacted
          ? `${d.column} differs (value not shown: secret-looking column)`
          : `${d.column}: row ${value(d.row)}, round trip ${value(d.roundTrip)}`,
      );
      lines.push(`    ${keyText(row.key)}: ${diffs.join('; ')}`);
    }
    if (r.mismatched > r.rows.length) lines.push(`    ... and ${r.mismatched - r.rows.length} more`);
  }
  return `${lines.join('\n')}\n`;
}
