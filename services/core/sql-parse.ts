/**
 * SQL from the spec, read with PostgreSQL's own parser (libpg-query: the server's grammar compiled
 * to WebAssembly). Mapping expressions are inlined into the backfill's UPDATE, the reconciler's
 * checksum queries and the stream verifier's SELECT, so a string rule ("no `;`") is not enough: a
 * `/*` in one mapping and a `*\/` inside a string literal of another can comment out the key-range
 * predicate between them. Every mapping is parsed alone, as `SELECT <expr>`, and must be exactly one
 * scalar expression over the source row; probe SQL must be exactly one read-only SELECT.
 *
 * The parser is loaded once, when this module is first imported (only by code that reads a spec or
 * lints DDL: the commands that never read a spec never load it). Its load time is kept in
 * `sqlParserLoadMs` for the record.
 */
import type { ScanResult } from 'libpg-query';

/** A node of the parse tree as libpg-query's JSON gives it: `{ NodeType: { ...fields } }`. */
export type PgNode = Record<string, unknown>;

const loadStarted = performance.now();
const lib = await import('libpg-query');
await lib.loadModule();
/** Milliseconds it took to import and instantiate the parser in this process. */
export const sqlParserLoadMs = performance.now() - loadStarted;

export interface ParsedStatement {
  /** The node type, e.g. "SelectStmt", "AlterTableStmt". */
  type: string;
  /** The node's fields. */
  node: PgNode;
  /** The statement's text as written (without the separating `;`). */
  text: string;
}

/** A parse failure with PostgreSQL's message and the 0-based offset it points at. */
export class SqlSyntaxError extends Error {
  constructor(
    message: string,
    readonly position: number | undefined,
  ) {
    super(message);
    this.name = 'SqlSyntaxError';
  }
}

/** Parses SQL text into its statements. Throws SqlSyntaxError with PostgreSQL's message. */
export function parseStatements(sql: string): ParsedStatement[] {
  if (sql.trim() === '') return [];
  let result: { stmts?: { stmt?: PgNode; stmt_location?: number; stmt_len?: number }[] };
  try {
    result = lib.parseSync(sql) as typeof result;
  } catch (err) {
    const position = (err as { sqlDetails?: { cursorPosition?: number } }).sqlDetails?.cursorPosition;
    throw new SqlSyntaxError((err as Error).message, position);
  }
  return (result.stmts ?? []).flatMap((raw) => {
    if (!raw.stmt) return [];
    const [type, node] = Object.entries(raw.stmt)[0] as [string, PgNode];
    const start = raw.stmt_location ?? 0;
    const text = raw.stmt_len ? sql.slice(start, start + raw.stmt_len) : sql.slice(start);
    return [{ type, node, text: text.trim() }];
  });
}

/** The lexer's tokens (comments included, which the parse tree drops). */
export function scanTokens(sql: string): ScanResult['tokens'] {
  try {
    return lib.scanSync(sql).tokens;
  } catch {
    return [];
  }
}

/** The comments in `sql` (their text), as the lexer sees them: never inside literals or dollar quotes. */
export function commentsOf(sql: string): string[] {
  return scanTokens(sql)
    .filter((t) => t.tokenName === 'C_COMMENT' || t.tokenName === 'SQL_COMMENT')
    .map((t) => t.text);
}

/**
 * The SQL statements of a PL/pgSQL body (a DO block or a plpgsql function), found by PostgreSQL's
 * PL/pgSQL parser: each embedded statement, and the text of `EXECUTE '<constant>'`. `dynamic` counts
 * EXECUTEs of anything else (a built string that no one can read before it runs).
 */
export function plpgsqlStatements(createOrDo: string): { statements: string[]; dynamic: number } {
  let parsed: unknown;
  try {
    parsed = lib.parsePlPgSQLSync(createOrDo);
  } catch (err) {
    throw new SqlSyntaxError(`PL/pgSQL body: ${(err as Error).message}`, undefined);
  }
  const statements: string[] = [];
  let dynamic = 0;
  walk(parsed, (type, node) => {
    if (type === 'PLpgSQL_stmt_execsql') {
      const query = ((node.sqlstmt as PgNode | undefined)?.PLpgSQL_expr as PgNode | undefined)?.query;
      if (typeof query === 'string') statements.push(query);
    } else if (type === 'PLpgSQL_stmt_dynexecute') {
      const query = ((node.query as PgNode | undefined)?.PLpgSQL_expr as PgNode | undefined)?.query;
      const constant = typeof query === 'string' ? stringConstant(query) : undefined;
      if (constant !== undefined) statements.push(constant);
      else dynamic++;
    }
  });
  return { statements, dynamic };
}

/** The value of `text` when it is exactly one string literal ('...' or $$...$$), else undefined. */
function stringConstant(text: string): string | undefined {
  try {
    const [stmt] = parseStatements(`SELECT ${text}`);
    const targets = stmt?.node.targetList as PgNode[] | undefined;
    if (!stmt || stmt.type !== 'SelectStmt' || targets?.length !== 1) return undefined;
    const value = (targets[0]?.ResTarget as PgNode | undefined)?.val as PgNode | undefined;
    const sval = ((value?.A_Const as PgNode | undefined)?.sval as PgNode | undefined)?.sval;
    return typeof sval === 'string' ? sval : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Visits every node of a parse tree, depth first: `visit(type, fields, parentKey)`. A node is an
 * object with one key that names its type; plain field objects (a RangeVar under `relation`) are
 * visited with the type of the key they sit under.
 */
export function walk(tree: unknown, visit: (type: string, node: PgNode, key: string) => void, key = ''): void {
  if (Array.isArray(tree)) {
    for (const item of tree) walk(item, visit, key);
    return;
  }
  if (!tree || typeof tree !== 'object') return;
  const entries = Object.entries(tree as PgNode);
  if (
    entries.length === 1 &&
    /^[A-Z]/.test(entries[0]![0]) &&
    entries[0]![1] &&
    typeof entries[0]![1] === 'object' &&
    !Array.isArray(entries[0]![1])
  ) {
    const [type, node] = entries[0] as [string, PgNode];
    visit(type, node, key);
    for (const [k, v] of Object.entries(node)) walk(v, visit, k);
    return;
  }
  for (const [k, v] of entries) {
    if (v && typeof v === 'object') {
      // Fields such as `relation` hold a RangeVar without its wrapper.
      if (!Array.isArray(v) && (k === 'relation' || k === 'pktable' || k === 'rel') && 'relname' in (v as PgNode))
        visit('RangeVar', v as PgNode, k);
      walk(v, visit, k);
    }
  }
}

/** The names of a `String` list (funcname, typeName.names, ColumnRef.fields), lower level first. */
export function names(list: unknown): string[] {
  if (!Array.isArray(list)) return [];
  return list.flatMap((n) => {
    const s = (n as PgNode | undefined)?.String as PgNode | undefined;
    return typeof s?.sval === 'string' ? [s.sval] : [];
  });
}

/**
 * Functions refused in spec SQL unless listed in the spec's `allowFunctions`: they change server
 * or session state, reach outside the database, read files, take locks, consume sequence values or
 * transaction ids, run SQL given as a string, or sleep. Every `pg_*` function is refused as well
 * (server administration and catalog access), so the list names the rest.
 */
export const DENIED_FUNCTIONS: ReadonlySet<string> = new Set([
  'set_config',
  'nextval',
  'setval',
  'currval',
  'lastval',
  'txid_current',
  'txid_current_if_assigned',
  'lo_import',
  'lo_export',
  'lo_unlink',
  'lo_create',
  'lo_creat',
  'lo_open',
  'lo_put',
  'lo_from_bytea',
  'lo_truncate',
  'query_to_xml',
  'query_to_xmlschema',
  'query_to_xml_and_xmlschema',
  'table_to_xml',
  'table_to_xmlschema',
  'table_to_xml_and_xmlschema',
  'cursor_to_xml',
  'cursor_to_xmlschema',
  'schema_to_xml',
  'schema_to_xmlschema',
  'schema_to_xml_and_xmlschema',
  'database_to_xml',
  'database_to_xmlschema',
  'database_to_xml_and_xmlschema',
  'ts_stat',
]);

/** Function-name prefixes refused the same way (families of the above). */
const DENIED_PREFIXES = ['pg_', 'dblink', 'lo_', 'txid_'];

/** Set-returning functions: a mapping yields one value per row, a set-returning call many. */
export const SET_RETURNING_FUNCTIONS: ReadonlySet<string> = new Set([
  'generate_series',
  'generate_subscripts',
  'unnest',
  'json_array_elements',
  'json_array_elements_text',
  'jsonb_array_elements',
  'jsonb_array_elements_text',
  'json_each',
  'json_each_text',
  'jsonb_each',
  'jsonb_each_text',
  'json_object_keys',
  'jsonb_object_keys',
  'json_populate_recordset',
  'jsonb_populate_recordset',
  'json_to_recordset',
  'jsonb_to_recordset',
  'jsonb_path_query',
  'regexp_matches',
  'regexp_split_to_table',
  'string_to_table',
  'ts_parse',
  'ts_token_type',
  'ts_debug',
  'aclexplode',
]);

/** Aggregates: inside a mapping they would fold the batch's rows into one. */
const AGGREGATES: ReadonlySet<string> = new Set([
  'count',
  'sum',
  'avg',
  'min',
  'max',
  'array_agg',
  'string_agg',
  'json_agg',
  'jsonb_agg',
  'json_object_agg',
  'jsonb_object_agg',
  'bool_and',
  'bool_or',
  'every',
  'bit_and',
  'bit_or',
  'bit_xor',
  'xmlagg',
  'stddev',
  'stddev_pop',
  'stddev_samp',
  'variance',
  'var_pop',
  'var_samp',
  'percentile_cont',
  'percentile_disc',
  'mode',
  'range_agg',
  'range_intersect_agg',
  'any_value',
]);

/** Why a function may not be called from spec SQL, or undefined when it may. */
export function deniedFunction(name: string, allow: ReadonlySet<string>): string | undefined {
  const n = name.toLowerCase();
  if (allow.has(n)) return undefined;
  if (DENIED_FUNCTIONS.has(n) || DENIED_PREFIXES.some((p) => n.startsWith(p))) {
    return `${n}() changes server or session state, reaches outside the database, takes locks or consumes ids`;
  }
  return undefined;
}

/** A problem found in a piece of spec SQL: what is wrong, and what to write instead. */
export interface SqlProblem {
  message: string;
  hint: string;
}

const CATALOG_SCHEMAS = new Set(['pg_catalog', 'information_schema', 'pg_toast']);

/** Functions anywhere in a tree, checked against the deny list; catalog references too unless allowed. */
function checkCallsAndRelations(
  tree: unknown,
  allow: ReadonlySet<string>,
  problems: SqlProblem[],
  where: string,
  catalogs: 'refuse' | 'allow',
): void {
  walk(tree, (type, node) => {
    if (type === 'FuncCall') {
      const fn = names(node.funcname);
      const name = (fn[fn.length - 1] ?? '').toLowerCase();
      const why = deniedFunction(name, allow);
      if (why)
        problems.push({
          message: `${where} calls ${name}(): ${why}`,
          hint: `remove the call; if it is really needed and safe here, list it in the spec: allowFunctions: [${name}]`,
        });
    } else if (type === 'RangeVar' && catalogs === 'refuse') {
      const schema = typeof node.schemaname === 'string' ? node.schemaname.toLowerCase() : '';
      const rel = typeof node.relname === 'string' ? node.relname.toLowerCase() : '';
      if (CATALOG_SCHEMAS.has(schema) || rel.startsWith('pg_')) {
        problems.push({
          message: `${where} reads the system catalog (${schema ? `${schema}.` : ''}${rel})`,
          hint: 'spec SQL reads application tables only; catalogs can expose other users, roles and settings',
        });
      }
    }
  });
}

/** Options of the SQL checks: the functions the spec opts in to by name. */
export interface SqlCheckOptions {
  allowFunctions?: readonly string[];
}

/**
 * Checks one mapping expression: exactly one scalar expression over the source row. Refused:
 * comments (the text is inlined into larger statements), `;`, anything but one target of a bare
 * `SELECT` (FROM, WHERE, UNION, an alias), subqueries, parameters, catalogs, aggregates, window
 * functions, set-returning and denied functions. Returns the problems (empty: accepted).
 */
export function checkMappingExpression(expr: string, options: SqlCheckOptions = {}): SqlProblem[] {
  const allow = new Set((options.allowFunctions ?? []).map((f) => f.toLowerCase()));
  const problems: SqlProblem[] = [];
  const instead = "write one expression over the source row's columns, e.g. total_amount::bigint * 100 or coalesce(note, '')";
  const text = `SELECT ${expr}`;
  const tokens = scanTokens(text);
  if (tokens.some((t) => t.tokenName === 'C_COMMENT' || t.tokenName === 'SQL_COMMENT') || /\/\*|--/.test(tokens.length === 0 ? expr : '')) {
    problems.push({
      message: 'the mapping contains a comment; it is inlined into larger statements, where a comment can hide what follows it',
      hint: 'remove the comment (describe the mapping in a YAML comment instead: # ...)',
    });
  }
  if (tokens.some((t) => t.text === ';')) {
    problems.push({ message: 'the mapping contains ";" (statements are not allowed here)', hint: instead });
  }
  let stmts: ParsedStatement[];
  try {
    stmts = parseStatements(text);
  } catch (err) {
    problems.push({ message: `not a valid SQL expression: ${(err as Error).message}`, hint: instead });
    return problems;
  }
  if (problems.length > 0) return problems;
  const stmt = stmts[0];
  const targets = stmt?.node.targetList as PgNode[] | undefined;
  const extra = stmt ? Object.keys(stmt.node).filter((k) => !['targetList', 'limitOption', 'op'].includes(k)) : [];
  if (
    stmts.length !== 1 ||
    !stmt ||
    stmt.type !== 'SelectStmt' ||
    stmt.node.op !== 'SETOP_NONE' ||
    extra.length > 0 ||
    targets?.length !== 1
  ) {
    problems.push({ message: 'a mapping is exactly one expression (no FROM, WHERE, UNION, second column or statement)', hint: instead });
    return problems;
  }
  const target = targets[0]?.ResTarget as PgNode | undefined;
  if (target?.name)
    problems.push({
      message: `the mapping names its result ("${String(target.name)}"); the column it fills is the mapping's key`,
      hint: 'remove the alias',
    });
  walk(target?.val, (type, node) => {
    if (type === 'SubLink')
      problems.push({
        message: 'the mapping contains a subquery',
        hint: `${instead}; a subquery runs once per row and can read any table`,
      });
    else if (type === 'ParamRef')
      problems.push({
        message: 'the mapping contains a parameter ($n); parity binds its own parameters in the statements it builds',
        hint: instead,
      });
    else if (type === 'ColumnRef') {
      const fields = names(node.fields).map((f) => f.toLowerCase());
      if (fields.length > 1 && (CATALOG_SCHEMAS.has(fields[0] ?? '') || (fields[0] ?? '').startsWith('pg_'))) {
        problems.push({ message: `the mapping reads the system catalog (${fields.join('.')})`, hint: instead });
      } else if (fields.length > 1) {
        problems.push({
          message: `the mapping qualifies a column (${fields.join('.')}); parity decides which row the expression reads`,
          hint: `write the bare column name (${fields[fields.length - 1]})`,
        });
      }
    } else if (type === 'FuncCall') {
      const fn = names(node.funcname);
      const name = (fn[fn.length - 1] ?? '').toLowerCase();
      if (node.over) problems.push({ message: `the mapping calls the window function ${name}() OVER (...)`, hint: instead });
      else if (AGGREGATES.has(name) || node.agg_star || node.agg_distinct || node.agg_order || node.agg_filter) {
        if (!allow.has(name))
          problems.push({
            message: `the mapping calls the aggregate ${name}(); a mapping is computed per row`,
            hint: `${instead}; to opt in by name (e.g. a function of yours named like an aggregate), list it: allowFunctions: [${name}]`,
          });
      } else if (SET_RETURNING_FUNCTIONS.has(name) && !allow.has(name)) {
        problems.push({
          message: `the mapping calls the set-returning function ${name}(); a mapping yields one value per row`,
          hint: `aggregate the set into one value (e.g. an ARRAY(...) is a subquery: compute it in the application), or list it: allowFunctions: [${name}]`,
        });
      }
    }
  });
  checkCallsAndRelations(target?.val, allow, problems, 'the mapping', 'refuse');
  return problems;
}

/**
 * Checks probe SQL: exactly one read-only SELECT (a trailing `;` is fine). Refused: other statement
 * kinds, SELECT INTO, data-modifying CTEs, FOR UPDATE/SHARE, catalogs and denied functions (advisory
 * locks, sleeps, ...).
 */
export function checkReadOnlyQuery(sql: string, options: SqlCheckOptions = {}): SqlProblem[] {
  const allow = new Set((options.allowFunctions ?? []).map((f) => f.toLowerCase()));
  const instead = "write one plain SELECT like the application's, e.g. SELECT * FROM orders WHERE id = 42";
  let stmts: ParsedStatement[];
  try {
    stmts = parseStatements(sql);
  } catch (err) {
    return [{ message: `not valid SQL: ${(err as Error).message}`, hint: instead }];
  }
  if (stmts.length !== 1) return [{ message: `a probe is exactly one statement (found ${stmts.length})`, hint: instead }];
  const stmt = stmts[0] as ParsedStatement;
  if (stmt.type !== 'SelectStmt') return [{ message: `a probe must be a SELECT (found ${statementKind(stmt.type)})`, hint: instead }];
  const problems: SqlProblem[] = [];
  walk(stmt.node, (type, node, key) => {
    if (type === 'InsertStmt' || type === 'UpdateStmt' || type === 'DeleteStmt' || type === 'MergeStmt') {
      problems.push({
        message: `the probe modifies data (${statementKind(type)}${key === 'ctequery' ? ' in a WITH clause' : ''})`,
        hint: instead,
      });
    } else if (type === 'LockingClause') {
      problems.push({ message: 'the probe locks rows (FOR UPDATE/SHARE)', hint: 'remove the FOR UPDATE/SHARE clause: a probe only reads' });
    }
  });
  if (stmt.node.intoClause) problems.push({ message: 'SELECT INTO creates a table', hint: instead });
  // A probe may read statistics views (pg_stat_activity is a fair load signal); it only reads.
  checkCallsAndRelations(stmt.node, allow, problems, 'the probe', 'allow');
  return problems;
}

/** "AlterTableStmt" -> "ALTER TABLE", for messages. */
export function statementKind(type: string): string {
  const known: Record<string, string> = {
    SelectStmt: 'SELECT',
    InsertStmt: 'INSERT',
    UpdateStmt: 'UPDATE',
    DeleteStmt: 'DELETE',
    MergeStmt: 'MERGE',
    AlterTableStmt: 'ALTER TABLE',
    IndexStmt: 'CREATE INDEX',
    DropStmt: 'DROP',
    LockStmt: 'LOCK TABLE',
    DoStmt: 'DO',
    TruncateStmt: 'TRUNCATE',
    VacuumStmt: 'VACUUM',
    ClusterStmt: 'CLUSTER',
    ReindexStmt: 'REINDEX',
    RenameStmt: 'RENAME',
    CreateFunctionStmt: 'CREATE FUNCTION',
  };
  return (
    known[type] ??
    type
      .replace(/Stmt$/, '')
      .replace(/([a-z])([A-Z])/g, '$1 $2')
      .toUpperCase()
  );
}

/** The source columns a mapping expression reads (lower-cased as PostgreSQL resolves them). */
export function columnsRead(expr: string): string[] {
  const out = new Set<string>();
  try {
    walk(parseStatements(`SELECT ${expr}`), (type, node) => {
      if (type === 'ColumnRef') {
        const fields = names(node.fields);
        const last = fields[fields.length - 1];
        if (last) out.add(last);
      }
    });
  } catch {
    // An unparseable mapping is refused by validation; it reads nothing we can name.
  }
  return [...out];
}
