/**
 * The DDL linter: flags statements that lock or rewrite a busy table, change data in bulk, or break
 * the old representation before the contract step, each with the safe alternative. Every step is
 * read with PostgreSQL's own parser (core/sql-parse.ts), so comments, string literals and quoted
 * names cannot hide or fake a statement, and the bodies of DO blocks and functions (dollar-quoted)
 * are parsed and linted like steps of their own.
 *
 * Findings of severity `fixed` are made safe by parity's own plan (ddl-statement.ts); `error`
 * findings stop `parity expand|enforce|contract` until the spec is changed, or the step carries
 * `/* parity:allow <rule> *\/` after a person checked it is safe (e.g. a binary-coercible type change).
 */
import type { Spec } from '../core/spec.js';
import {
  columnsRead,
  commentsOf,
  names,
  parseStatements,
  plpgsqlStatements,
  statementKind,
  walk,
  type ParsedStatement,
  type PgNode,
} from '../core/sql-parse.js';
import { DDL_PHASES, cleanSql, planPhase, type DdlPhase, type DdlStep } from './ddl-statement.js';

/** `warning`: worth knowing before the run (a cost, not a hazard); it never stops a phase. */
export type LintSeverity = 'error' | 'fixed' | 'warning';

export interface LintFinding {
  phase: DdlPhase;
  step: string;
  rule: string;
  severity: LintSeverity;
  message: string;
  /** What to write instead (or, for `fixed`, what parity runs). */
  alternative: string;
}

export interface LintReport {
  findings: LintFinding[];
  errors: number;
}

/**
 * What the migration still reads, from the spec: `afterContract` survives the contract step (the new
 * representation, streamed tables); `beforeContract` is read until then (the source columns the
 * mapping reads). Keys are "schema.table"; a column set names the columns read (empty: the table).
 */
export interface LintContext {
  key: string[];
  /**
   * Same-table backfills: the table and the columns every backfilled row updates, for the
   * `backfill-non-hot` rule (an update can be HOT only if no indexed column changes).
   */
  backfillWrites?: { table: string; columns: Set<string> };
  afterContract: Map<string, Map<string, string>>;
  beforeContract: Map<string, Map<string, string>>;
}

const VOLATILE_FUNCTIONS = new Set([
  'random',
  'clock_timestamp',
  'gen_random_uuid',
  'nextval',
  'timeofday',
  'statement_timestamp',
  'txid_current',
  'uuid_generate_v1',
  'uuid_generate_v1mc',
  'uuid_generate_v4',
  'uuidv4',
  'uuidv7',
]);
const SERIAL_TYPES = new Set(['serial', 'bigserial', 'smallserial', 'serial2', 'serial4', 'serial8']);
/** Drops that remove data or objects the old representation needs (DROP INDEX has its own rule). */
const DATA_DROPS = new Set([
  'OBJECT_TABLE',
  'OBJECT_SCHEMA',
  'OBJECT_VIEW',
  'OBJECT_MATVIEW',
  'OBJECT_TYPE',
  'OBJECT_SEQUENCE',
  'OBJECT_FOREIGN_TABLE',
  'OBJECT_DOMAIN',
]);
const DML = new Set(['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt']);

/** "schema.table" of a RangeVar (unqualified means public), as PostgreSQL resolves the names. */
function relName(rel: unknown): string {
  const r = (rel ?? {}) as PgNode;
  return `${typeof r.schemaname === 'string' ? r.schemaname : 'public'}.${typeof r.relname === 'string' ? r.relname : ''}`;
}

/** "schema.table" of a DROP's object (a List of names). */
function objectName(obj: unknown): string {
  const parts = names(((obj as PgNode | undefined)?.List as PgNode | undefined)?.items);
  return parts.length >= 2 ? `${parts[parts.length - 2]}.${parts[parts.length - 1]}` : `public.${parts[0] ?? ''}`;
}

function addTo(map: Map<string, Map<string, string>>, table: string, column: string, why: string): void {
  const columns = map.get(table) ?? new Map<string, string>();
  if (!columns.has(column)) columns.set(column, why);
  map.set(table, columns);
}

/** What the spec's migration still reads, for the `drop-still-read` rule. */
export function lintContext(spec: Pick<Spec, 'source' | 'target' | 'key' | 'mapping' | 'cdc' | 'cache'>): LintContext {
  const afterContract = new Map<string, Map<string, string>>();
  const beforeContract = new Map<string, Map<string, string>>();
  const source = `${spec.source.schema}.${spec.source.table}`;
  const target = spec.target.kind === 'same-table' ? source : `${spec.target.schema}.${spec.target.table}`;
  // The target lives on after contract (for other-database targets DDL steps run there too).
  addTo(afterContract, target, '', "the new representation (the spec's target)");
  for (const k of spec.key) addTo(afterContract, target, k, 'a key column');
  for (const column of Object.keys(spec.mapping))
    addTo(afterContract, target, column, 'a column of the new representation (a mapping target)');
  for (const column of spec.cache?.projection ?? []) addTo(afterContract, target, column, 'a column the cache stores (cache.projection)');
  for (const t of spec.cdc.tables) addTo(afterContract, t.includes('.') ? t : `public.${t}`, '', 'a table streamed by cdc.tables');
  addTo(beforeContract, source, '', "the old representation (the spec's source)");
  for (const k of spec.key) addTo(beforeContract, source, k, 'a key column of the source');
  for (const [column, expr] of Object.entries(spec.mapping)) {
    for (const read of columnsRead(expr)) addTo(beforeContract, source, read, `read by the mapping of ${column}`);
  }
  return {
    key: [...spec.key],
    afterContract,
    beforeContract,
    ...(spec.target.kind === 'same-table' ? { backfillWrites: { table: source, columns: new Set(Object.keys(spec.mapping)) } } : {}),
  };
}

/** The backfill-non-hot message's common tail: why a non-HOT update costs the backfill (and everyone) more. */
const NON_HOT_COST =
  'so every backfilled row is a non-HOT update: a new entry in every index of the table and their WAL (often full pages after a checkpoint), more than the row itself';

/** Why `table` (or its `column`) is still read in `phase`, or undefined. */
function stillRead(context: LintContext | undefined, phase: DdlPhase, table: string, column?: string): string | undefined {
  if (!context) return undefined;
  const sets = phase === 'contract' ? [context.afterContract] : [context.afterContract, context.beforeContract];
  for (const set of sets) {
    const columns = set.get(table);
    if (!columns) continue;
    if (column === undefined) return columns.get('') ?? [...columns.values()][0];
    const why = columns.get(column);
    if (why) return why;
  }
  return undefined;
}

/** Column names a parse-tree node references (ColumnRef, last field). */
function columnsOfNode(node: unknown): string[] {
  const out: string[] = [];
  if (!node) return out;
  walk(node as PgNode, (t, n) => {
    if (t === 'ColumnRef') {
      const last = names((n as PgNode).fields).at(-1);
      if (last) out.push(last);
    }
  });
  return out;
}

/** True when the conjuncts of `where` bound a key column on both sides (=, IN, BETWEEN, or < and >). */
function boundedByKey(where: unknown, key: readonly string[]): boolean {
  if (!where) return false;
  const conjuncts: PgNode[] = [];
  const collect = (n: PgNode): void => {
    const bool = n.BoolExpr as PgNode | undefined;
    if (bool?.boolop === 'AND_EXPR') for (const a of (bool.args as PgNode[]) ?? []) collect(a);
    else conjuncts.push(n);
  };
  collect(where as PgNode);
  const lower = new Set<string>();
  const upper = new Set<string>();
  for (const c of conjuncts) {
    const e = c.A_Expr as PgNode | undefined;
    if (!e) continue;
    const left = names(((e.lexpr as PgNode | undefined)?.ColumnRef as PgNode | undefined)?.fields).at(-1);
    const right = names(((e.rexpr as PgNode | undefined)?.ColumnRef as PgNode | undefined)?.fields).at(-1);
    const column = left && key.includes(left) ? left : right && key.includes(right) ? right : undefined;
    if (!column) continue;
    const op = names(e.name)[0];
    const flipped = column !== left;
    if (e.kind === 'AEXPR_BETWEEN' || e.kind === 'AEXPR_IN' || (e.kind === 'AEXPR_OP' && op === '=')) {
      lower.add(column);
      upper.add(column);
    } else if (e.kind === 'AEXPR_OP' && (op === '<' || op === '<=')) (flipped ? lower : upper).add(column);
    else if (e.kind === 'AEXPR_OP' && (op === '>' || op === '>=')) (flipped ? upper : lower).add(column);
  }
  return [...lower].some((c) => upper.has(c));
}

interface PhaseState {
  validatedChecks: Map<string, Set<string>>;
  pendingChecks: Map<string, { table: string; column: string }>;
}

type Add = (rule: string, severity: LintSeverity, message: string, alternative: string) => void;

/** The column of `CHECK (col IS NOT NULL)`, or undefined. */
function notNullCheckColumn(expr: unknown): string | undefined {
  const test = (expr as PgNode | undefined)?.NullTest as PgNode | undefined;
  if (test?.nulltesttype !== 'IS_NOT_NULL') return undefined;
  const fields = names(((test.arg as PgNode | undefined)?.ColumnRef as PgNode | undefined)?.fields);
  return fields.length === 1 ? fields[0] : undefined;
}

function hasOption(options: unknown, name: string): boolean {
  return Array.isArray(options) && options.some((o) => ((o as PgNode).DefElem as PgNode | undefined)?.defname === name);
}

/** The function body of a CREATE FUNCTION / DO and its language. */
function bodyOf(stmt: ParsedStatement): { language: string; body: string } | undefined {
  const options = (stmt.type === 'DoStmt' ? stmt.node.args : stmt.node.options) as PgNode[] | undefined;
  let language = stmt.type === 'DoStmt' ? 'plpgsql' : 'sql';
  let body: string | undefined;
  for (const o of options ?? []) {
    const d = o.DefElem as PgNode | undefined;
    const arg = d?.arg as PgNode | undefined;
    if (d?.defname === 'language') language = String((arg?.String as PgNode | undefined)?.sval ?? language).toLowerCase();
    if (d?.defname === 'as')
      body = ((arg?.String as PgNode | undefined)?.sval as string | undefined) ?? names((arg?.List as PgNode | undefined)?.items)[0];
  }
  return body === undefined ? undefined : { language, body };
}

/** Lints one parsed statement (and, recursively, the statements of a DO block or function body). */
function lintStatement(
  stmt: ParsedStatement,
  phase: DdlPhase,
  add: Add,
  state: PhaseState,
  context: LintContext | undefined,
  depth: number,
): void {
  const { type, node } = stmt;
  const sqlText = cleanSql(stmt.text).sql;
  const bodyAdd: Add =
    depth === 0
      ? add
      : (rule, severity, message, alternative) =>
          add(
            rule,
            'error',
            `in a ${severity === 'fixed' ? 'function or DO body (where parity cannot rewrite it)' : 'function or DO body'}: ${message}`,
            alternative,
          );

  // Data-modifying CTEs, anywhere in the statement.
  walk(node, (t, _n, key) => {
    if (key === 'ctequery' && DML.has(t)) {
      bodyAdd(
        'data-modifying-cte',
        'error',
        `a WITH clause runs ${statementKind(t)}: a data change hidden inside a query, in one transaction over the whole table`,
        'change data with the backfill (parity backfill: batched, throttled, resumable), not in a DDL step; if it is small and intended, add /* parity:allow data-modifying-cte */',
      );
    }
  });

  switch (type) {
    case 'IndexStmt': {
      const writes = context?.backfillWrites;
      if (writes && phase === 'expand' && relName(node.relation) === writes.table) {
        const indexed = new Set<string>();
        for (const p of (node.indexParams as PgNode[]) ?? []) {
          const elem = p.IndexElem as PgNode | undefined;
          if (typeof elem?.name === 'string') indexed.add(elem.name);
          if (elem?.expr) for (const c of columnsOfNode(elem.expr)) indexed.add(c);
        }
        for (const c of columnsOfNode(node.whereClause)) indexed.add(c);
        for (const p of (node.indexIncludingParams as PgNode[]) ?? []) {
          const elem = p.IndexElem as PgNode | undefined;
          if (typeof elem?.name === 'string') indexed.add(elem.name);
        }
        const hit = [...indexed].filter((c) => writes.columns.has(c));
        if (hit.length > 0)
          add(
            'backfill-non-hot',
            'warning',
            `the index covers ${hit.join(', ')}, which the backfill writes in every row of ${writes.table}, ${NON_HOT_COST}`,
            'create the index in ddl.enforce (after the backfill), CONCURRENTLY; the backfill then updates rows in place (HOT) where the page has room',
          );
      }
      if (!node.concurrent)
        add(
          'index-not-concurrent',
          depth === 0 ? 'fixed' : 'error',
          'CREATE INDEX without CONCURRENTLY blocks every write to the table for the whole build',
          depth === 0
            ? `parity runs it as ${sqlText.replace(/^(CREATE\s+(?:UNIQUE\s+)?INDEX)\s+/i, '$1 CONCURRENTLY ')}`
            : 'write CREATE INDEX CONCURRENTLY as a step of its own (not inside a function or DO block, where CONCURRENTLY cannot run)',
        );
      if (!node.idxname)
        add(
          'index-unnamed',
          'error',
          'the index has no name, so an invalid index left by a failed concurrent build cannot be found and dropped',
          'name it: CREATE INDEX CONCURRENTLY IF NOT EXISTS <name> ON ...',
        );
      return;
    }
    case 'DropStmt': {
      if (node.removeType === 'OBJECT_INDEX') {
        if (node.concurrent) return;
        const objects = (node.objects as unknown[]) ?? [];
        if (node.behavior === 'DROP_CASCADE' || objects.length > 1 || depth > 0)
          add(
            'drop-index-not-concurrent',
            'error',
            'DROP INDEX takes an ACCESS EXCLUSIVE lock; CONCURRENTLY cannot drop several indexes or CASCADE',
            'drop one index per step with DROP INDEX CONCURRENTLY IF EXISTS <name>',
          );
        else
          add(
            'drop-index-not-concurrent',
            'fixed',
            'DROP INDEX takes an ACCESS EXCLUSIVE lock on the table',
            `parity runs it as ${sqlText.replace(/^DROP\s+INDEX\s+/i, 'DROP INDEX CONCURRENTLY ')}`,
          );
        return;
      }
      if (node.removeType === 'OBJECT_TABLE' || node.removeType === 'OBJECT_FOREIGN_TABLE') {
        for (const obj of (node.objects as unknown[]) ?? []) {
          const table = objectName(obj);
          const why = stillRead(context, phase, table);
          if (why) {
            bodyAdd(
              'drop-still-read',
              'error',
              `DROP TABLE ${table} drops ${why}, which the migration still reads${phase === 'contract' ? ' after the contract step' : ''}`,
              phase === 'contract'
                ? 'drop only the old representation in ddl.contract; the target and streamed tables stay'
                : 'move the drop to ddl.contract, and drop only what the new representation does not need',
            );
            return;
          }
        }
      }
      if (node.removeType === 'OBJECT_SCHEMA') {
        // DROP SCHEMA ... CASCADE takes every table in it; without CASCADE it fails on a non-empty schema.
        const dropped = new Set(
          ((node.objects as unknown[]) ?? []).map((o) => String(((o as PgNode).String as PgNode | undefined)?.sval ?? '')),
        );
        const tables = context
          ? [...(phase === 'contract' ? [context.afterContract] : [context.afterContract, context.beforeContract])].flatMap((m) => [
              ...m.keys(),
            ])
          : [];
        const hit = tables.find((t) => dropped.has(t.split('.')[0] ?? ''));
        if (hit) {
          bodyAdd(
            'drop-still-read',
            'error',
            `DROP SCHEMA ${hit.split('.')[0]} takes ${hit} with it (${stillRead(context, phase, hit)}), which the migration still reads`,
            'drop only the tables of the old representation, in ddl.contract',
          );
          return;
        }
      }
      if (phase !== 'contract' && DATA_DROPS.has(String(node.removeType))) {
        bodyAdd(
          'drop-before-contract',
          'error',
          `DROP ${String(node.removeType).replace(/^OBJECT_/, '')} in ${phase} removes what the old representation (and any rollback) still needs`,
          'move it to ddl.contract, which runs only after the contract gate passes',
        );
      }
      return;
    }
    case 'TruncateStmt': {
      const tables = ((node.relations as PgNode[]) ?? []).map((r) => relName(r.RangeVar));
      const read = tables.map((t) => [t, stillRead(context, phase, t)] as const).find(([, why]) => why);
      if (read)
        bodyAdd(
          'drop-still-read',
          'error',
          `TRUNCATE ${read[0]} empties ${read[1]}, which the migration still reads`,
          'truncate only tables the migration no longer reads, in ddl.contract',
        );
      else if (phase !== 'contract')
        bodyAdd(
          'drop-before-contract',
          'error',
          `TRUNCATE in ${phase} removes what the old representation (and any rollback) still needs`,
          'move it to ddl.contract, which runs only after the contract gate passes',
        );
      return;
    }
    case 'VacuumStmt':
    case 'ClusterStmt':
    case 'ReindexStmt': {
      const rewrites =
        type === 'ClusterStmt' ||
        (type === 'VacuumStmt' && hasOption(node.options, 'full')) ||
        (type === 'ReindexStmt' && !hasOption(node.params, 'concurrently'));
      if (rewrites)
        bodyAdd(
          'table-rewrite',
          'error',
          `${sqlText.split(' ').slice(0, 2).join(' ')} rewrites or locks the whole table`,
          'use REINDEX ... CONCURRENTLY, or pg_repack, outside the migration',
        );
      return;
    }
    case 'RenameStmt': {
      if (phase !== 'contract')
        bodyAdd(
          'rename-before-contract',
          'error',
          `a rename in ${phase} breaks every reader and writer that still uses the old name`,
          'add the new name alongside (a new column, or a view), dual-write, move readers over, and drop the old name in ddl.contract',
        );
      return;
    }
    case 'LockStmt': {
      bodyAdd(
        'lock-table',
        'error',
        "LOCK TABLE holds its lock until the step's transaction ends, and every reader and writer queues behind it (behind a waiting ACCESS EXCLUSIVE request too)",
        'remove it: each statement takes the lock it needs, and parity runs every step with lock_timeout and retries; if it is really needed, add /* parity:allow lock-table */',
      );
      return;
    }
    case 'DeleteStmt':
    case 'MergeStmt':
    case 'UpdateStmt': {
      if (type === 'UpdateStmt' && boundedByKey(node.whereClause, context?.key ?? ['id'])) return;
      const what = type === 'UpdateStmt' ? 'UPDATE without a key bound (WHERE <key> BETWEEN ... AND ..., = or IN)' : statementKind(type);
      bodyAdd(
        'dml',
        'error',
        `${what} in a DDL step changes rows of ${relName(node.relation)} in one transaction: it locks them all, bloats the table and its WAL floods CDC and replicas`,
        'change data with the backfill (parity backfill: batched, throttled, resumable), or bound each UPDATE by a key range in steps of its own; if it is small and intended, add /* parity:allow dml */',
      );
      return;
    }
    case 'DoStmt':
    case 'CreateFunctionStmt': {
      const body = bodyOf(stmt);
      if (!body) return;
      let statements: string[] = [];
      let dynamic = 0;
      try {
        if (body.language === 'plpgsql') ({ statements, dynamic } = plpgsqlStatements(stmt.text));
        else if (body.language === 'sql') statements = parseStatements(body.body).map((s) => s.text);
        else {
          add(
            'opaque-body',
            'error',
            `the ${body.language} body cannot be read by parity's linter`,
            'write the statements as DDL steps, or in LANGUAGE plpgsql or sql; if it is safe, add /* parity:allow opaque-body */',
          );
          return;
        }
      } catch (err) {
        add(
          'opaque-body',
          'error',
          `the body cannot be parsed: ${(err as Error).message}`,
          'fix the body (run it in psql against a scratch database to see)',
        );
        return;
      }
      if (dynamic > 0)
        add(
          'dynamic-sql',
          'error',
          `the body runs ${dynamic} EXECUTE of a built string, which cannot be checked before it runs`,
          "write the statements literally (EXECUTE '...' with a constant, or plain statements), or as DDL steps; if it is safe, add /* parity:allow dynamic-sql */",
        );
      for (const text of statements) {
        let inner: ParsedStatement[];
        try {
          inner = parseStatements(text);
        } catch {
          continue; // PL/pgSQL expressions that are not whole statements (e.g. with INTO) are not DDL.
        }
        for (const s of inner) lintStatement(s, phase, add, state, context, depth + 1);
      }
      return;
    }
    case 'AlterTableStmt':
      lintAlterTable(stmt, phase, add, bodyAdd, state, context, depth);
      return;
    default:
      return;
  }
}

function lintAlterTable(
  stmt: ParsedStatement,
  phase: DdlPhase,
  add: Add,
  bodyAdd: Add,
  state: PhaseState,
  context: LintContext | undefined,
  depth: number,
): void {
  const table = relName(stmt.node.relation);
  const cmds = ((stmt.node.cmds as PgNode[]) ?? []).map((c) => c.AlterTableCmd as PgNode);
  for (const cmd of cmds) {
    const sub = cmd.subtype;
    const def = cmd.def as PgNode | undefined;
    if (sub === 'AT_SetRelOptions' && phase !== 'contract' && context?.backfillWrites?.table === table) {
      for (const o of ((def?.List as PgNode | undefined)?.items as PgNode[]) ?? []) {
        const d = o.DefElem as PgNode | undefined;
        const value = Number(((d?.arg as PgNode | undefined)?.Integer as PgNode | undefined)?.ival ?? Number.NaN);
        if (d?.defname === 'fillfactor' && value >= 100)
          add(
            'backfill-non-hot',
            'warning',
            `fillfactor ${value} leaves no room on a page for a row's new version, ${NON_HOT_COST}`,
            'a lower fillfactor (e.g. 90) leaves room for updates on the pages written after it is set; existing full pages gain room only from VACUUM or a rewrite',
          );
      }
    }
    if (sub === 'AT_AddColumn') {
      const col = def?.ColumnDef as PgNode | undefined;
      const constraints = ((col?.constraints as PgNode[]) ?? []).map((c) => c.Constraint as PgNode);
      const has = (t: string) => constraints.some((c) => c.contype === t);
      if (has('CONSTR_NOTNULL') && !has('CONSTR_DEFAULT')) {
        bodyAdd(
          'add-column-not-null',
          'error',
          'ADD COLUMN ... NOT NULL without a default fails on a non-empty table (and needs every writer to set it at once)',
          'add the column nullable in expand, backfill it, then in enforce: ADD CONSTRAINT ... CHECK (col IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT, SET NOT NULL',
        );
      }
      let volatile =
        SERIAL_TYPES.has((names((col?.typeName as PgNode | undefined)?.names).at(-1) ?? '').toLowerCase()) ||
        has('CONSTR_IDENTITY') ||
        has('CONSTR_GENERATED');
      for (const c of constraints.filter((x) => x.contype === 'CONSTR_DEFAULT')) {
        walk(c.raw_expr, (t, n) => {
          if (t === 'FuncCall' && VOLATILE_FUNCTIONS.has((names(n.funcname).at(-1) ?? '').toLowerCase())) volatile = true;
        });
      }
      if (volatile) {
        bodyAdd(
          'volatile-default',
          'error',
          'a volatile default (random(), clock_timestamp(), gen_random_uuid(), nextval/serial, identity or stored generated columns) rewrites the whole table under an ACCESS EXCLUSIVE lock',
          'add the column without a default, then ALTER COLUMN ... SET DEFAULT (applies to new rows only) and backfill old rows in batches',
        );
      }
      continue;
    }
    if (sub === 'AT_AddConstraint') {
      const c = def?.Constraint as PgNode | undefined;
      if ((c?.contype === 'CONSTR_UNIQUE' || c?.contype === 'CONSTR_PRIMARY') && !c.indexname) {
        bodyAdd(
          'unique-constraint',
          'error',
          'adding a UNIQUE or PRIMARY KEY constraint builds its index under a lock that blocks writes',
          'CREATE UNIQUE INDEX CONCURRENTLY <name> ... in one step, then ADD CONSTRAINT <c> UNIQUE USING INDEX <name> (or PRIMARY KEY USING INDEX) in the next',
        );
        continue;
      }
      if (c?.contype === 'CONSTR_CHECK') {
        const column = notNullCheckColumn(c.raw_expr);
        if (column && typeof c.conname === 'string') {
          // Without NOT VALID parity splits it into NOT VALID + VALIDATE, so it ends validated.
          if (c.skip_validation) state.pendingChecks.set(`${table}:${c.conname}`, { table, column });
          else state.validatedChecks.set(table, new Set([...(state.validatedChecks.get(table) ?? []), column]));
        }
      }
      if ((c?.contype === 'CONSTR_CHECK' || c?.contype === 'CONSTR_FOREIGN') && !c.skip_validation) {
        if (cmds.length === 1 && depth === 0) {
          add(
            'constraint-not-valid',
            'fixed',
            'adding a CHECK or FOREIGN KEY constraint scans the whole table while holding a lock that blocks writes',
            'parity adds it NOT VALID, then runs VALIDATE CONSTRAINT (which lets reads and writes go on)',
          );
        } else {
          add(
            'constraint-not-valid',
            'error',
            'adding a CHECK or FOREIGN KEY constraint scans the whole table while holding a lock that blocks writes',
            'put the constraint in a step of its own (parity then adds it NOT VALID and validates it separately), or write NOT VALID and a VALIDATE CONSTRAINT step',
          );
        }
      }
      continue;
    }
    if (sub === 'AT_ValidateConstraint') {
      const pending = state.pendingChecks.get(`${table}:${String(cmd.name)}`);
      if (pending) state.validatedChecks.set(table, new Set([...(state.validatedChecks.get(table) ?? []), pending.column]));
      continue;
    }
    if (sub === 'AT_SetNotNull') {
      const column = String(cmd.name);
      if (!state.validatedChecks.get(table)?.has(column)) {
        bodyAdd(
          'set-not-null-unsafe',
          'error',
          `SET NOT NULL on ${column} scans the whole table under an ACCESS EXCLUSIVE lock (no validated CHECK (${column} IS NOT NULL) precedes it)`,
          `first ADD CONSTRAINT <c> CHECK (${column} IS NOT NULL) NOT VALID, then VALIDATE CONSTRAINT <c>, then SET NOT NULL (PostgreSQL 12+ uses the validated check and skips the scan); drop the check afterwards if you like`,
        );
      }
      continue;
    }
    if (sub === 'AT_AlterColumnType') {
      bodyAdd(
        'type-change',
        'error',
        `changing the type of ${String(cmd.name)} rewrites the table (and its indexes) under an ACCESS EXCLUSIVE lock unless the types are binary-coercible`,
        'add a new column of the new type, dual-write and backfill it, move reads, and drop the old column in ddl.contract; if the change is binary-coercible (e.g. varchar(n) to text), add /* parity:allow type-change */ to the step',
      );
      continue;
    }
    if (sub === 'AT_SetLogged' || sub === 'AT_SetUnLogged') {
      bodyAdd(
        'set-logged',
        'error',
        `SET ${sub === 'AT_SetLogged' ? 'LOGGED' : 'UNLOGGED'} rewrites the whole table under an ACCESS EXCLUSIVE lock${sub === 'AT_SetUnLogged' ? ', and an unlogged table is neither replicated nor streamed by CDC (its changes never reach Kafka)' : ''}`,
        "leave the table's persistence as it is during the migration; change it in a maintenance window, or create a new table and move the rows with the backfill",
      );
      continue;
    }
    if (sub === 'AT_DropColumn') {
      const column = String(cmd.name);
      const why = stillRead(context, phase, table, column);
      if (why)
        bodyAdd(
          'drop-still-read',
          'error',
          `dropping ${table}.${column} drops ${why}, which the migration still reads${phase === 'contract' ? ' after the contract step' : ''}`,
          phase === 'contract'
            ? 'drop only columns of the old representation in ddl.contract; keep the key and the columns the mapping fills'
            : 'move the drop to ddl.contract, once nothing reads the column',
        );
      else if (phase !== 'contract')
        bodyAdd(
          'drop-before-contract',
          'error',
          `dropping a column in ${phase} breaks the old representation while it is still in use`,
          'move the drop to ddl.contract, which runs only after the contract gate passes',
        );
    }
  }
}

/** Lints one phase's steps; the state carries NOT NULL checks validated by earlier steps and phases. */
function lintPhase(phase: DdlPhase, steps: readonly DdlStep[], state: PhaseState, context: LintContext | undefined): LintFinding[] {
  const out: LintFinding[] = [];
  const seen = new Set<string>();
  for (const step of steps) {
    const allow = new Set<string>();
    for (const comment of commentsOf(step.sql)) {
      const m = /parity:allow\s+([a-z0-9,\s-]+)/i.exec(comment);
      if (m?.[1]) for (const rule of m[1].split(/[,\s]+/)) if (rule) allow.add(rule.toLowerCase());
    }
    const add: Add = (rule, severity, message, alternative) => {
      if (severity === 'error' && allow.has(rule)) return;
      out.push({ phase, step: step.name, rule, severity, message, alternative });
    };
    if (seen.has(step.name))
      add(
        'duplicate-step-name',
        'error',
        `two ${phase} steps are named "${step.name}"`,
        'give every step a unique name; parity records applied steps by name',
      );
    seen.add(step.name);
    let statements: ParsedStatement[];
    try {
      statements = parseStatements(step.sql);
    } catch (err) {
      add(
        'syntax',
        'error',
        `PostgreSQL cannot parse the step: ${(err as Error).message}`,
        'fix the statement (spec validation reports it too)',
      );
      continue;
    }
    for (const stmt of statements) lintStatement(stmt, phase, add, state, context, 0);
  }
  return out;
}

/**
 * Lints every DDL step, in phase order (expand, enforce, contract). With a `context` (lintContext of
 * the spec), drops of what the migration still reads are flagged too (`parity lint` and the
 * coordinator pass it; `lintSpec` does both).
 */
export function lintDdl(ddl: Pick<Spec['ddl'], DdlPhase>, context?: LintContext): LintReport {
  const state: PhaseState = { validatedChecks: new Map(), pendingChecks: new Map() };
  const findings = DDL_PHASES.flatMap((phase) => lintPhase(phase, ddl[phase], state, context));
  return { findings, errors: findings.filter((f) => f.severity === 'error').length };
}

/** Lints the spec's DDL with what its migration still reads. */
export function lintSpec(spec: Spec): LintReport {
  return lintDdl(spec.ddl, lintContext(spec));
}

/** The plan of every phase, to show what parity will run. */
export function planDdl(ddl: Pick<Spec['ddl'], DdlPhase>): ReturnType<typeof planPhase> {
  return DDL_PHASES.flatMap((phase) => planPhase(phase, ddl[phase]));
}
