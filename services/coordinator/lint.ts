/**
 * The DDL linter: flags statements that lock or rewrite a busy table, or break the old
 * representation before the contract step, each with the safe alternative. Findings of severity
 * `fixed` are made safe by parity's own plan (ddl-statement.ts); `error` findings stop
 * `parity expand|enforce|contract` until the spec is changed, or the step carries
 * `/* parity:allow <rule> *\/` after a person checked it is safe (e.g. a binary-coercible type change).
 */
import type { Spec } from '../core/spec.js';
import { DDL_PHASES, IDENT, cleanSql, identName, parseAlterTable, parseCreateIndex, planPhase, tableName, type DdlPhase, type DdlStep } from './ddl-statement.js';

export type LintSeverity = 'error' | 'fixed';

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

const VOLATILE_DEFAULT = /\bDEFAULT\s+(?:random|clock_timestamp|gen_random_uuid|uuid_generate_v\d\w*|nextval|timeofday|statement_timestamp)\s*\(/i;
const SERIAL_TYPE = /^\s*(?:COLUMN\s+)?(?:IF\s+NOT\s+EXISTS\s+)?\S+\s+(?:small|big)?serial\b/i;
const NOT_NULL_CHECK = new RegExp(String.raw`^ADD\s+CONSTRAINT\s+(${IDENT})\s+CHECK\s*\(+\s*(${IDENT})\s+IS\s+NOT\s+NULL\s*\)+\s*(NOT\s+VALID)?\s*$`, 'i');
const VALIDATE = new RegExp(String.raw`^VALIDATE\s+CONSTRAINT\s+(${IDENT})\s*$`, 'i');
const SET_NOT_NULL = new RegExp(String.raw`^ALTER\s+(?:COLUMN\s+)?(${IDENT})\s+SET\s+NOT\s+NULL\s*$`, 'i');
const TYPE_CHANGE = new RegExp(String.raw`^ALTER\s+(?:COLUMN\s+)?(${IDENT})\s+(?:SET\s+DATA\s+)?TYPE\b`, 'i');
const ADD_COLUMN = /^ADD\s+(?!CONSTRAINT\b|PRIMARY\b|UNIQUE\b|CHECK\b|FOREIGN\b|EXCLUDE\b)/i;
const UNIQUE_OR_PK = /^ADD\s+(?:CONSTRAINT\s+\S+\s+)?(?:UNIQUE|PRIMARY\s+KEY)\b/i;
const DROP_COLUMN = /^DROP\s+(?!CONSTRAINT\b)(?:COLUMN\s+)?/i;

function finding(phase: DdlPhase, step: string, rule: string, severity: LintSeverity, message: string, alternative: string): LintFinding {
  return { phase, step, rule, severity, message, alternative };
}

/** Lints one phase's steps; `validatedChecks` carries NOT NULL checks validated by earlier steps. */
function lintPhase(phase: DdlPhase, steps: readonly DdlStep[], validatedChecks: Map<string, Set<string>>, pendingChecks: Map<string, { table: string; column: string }>): LintFinding[] {
  const out: LintFinding[] = [];
  const seen = new Set<string>();
  for (const step of steps) {
    const { sql, allow } = cleanSql(step.sql);
    const add = (rule: string, severity: LintSeverity, message: string, alternative: string): void => {
      if (severity === 'error' && allow.has(rule)) return;
      out.push(finding(phase, step.name, rule, severity, message, alternative));
    };
    if (seen.has(step.name)) add('duplicate-step-name', 'error', `two ${phase} steps are named "${step.name}"`, 'give every step a unique name; parity records applied steps by name');
    seen.add(step.name);

    const index = parseCreateIndex(sql);
    if (index) {
      if (!index.concurrently) add('index-not-concurrent', 'fixed', 'CREATE INDEX without CONCURRENTLY blocks every write to the table for the whole build', `parity runs it as ${sql.replace(/^(CREATE\s+(?:UNIQUE\s+)?INDEX)\s+/i, '$1 CONCURRENTLY ')}`);
      if (!index.name) add('index-unnamed', 'error', 'the index has no name, so an invalid index left by a failed concurrent build cannot be found and dropped', 'name it: CREATE INDEX CONCURRENTLY IF NOT EXISTS <name> ON ...');
      continue;
    }
    if (/^DROP\s+INDEX\s+(?!CONCURRENTLY\b)/i.test(sql)) {
      if (/\bCASCADE\b/i.test(sql) || sql.includes(',')) add('drop-index-not-concurrent', 'error', 'DROP INDEX takes an ACCESS EXCLUSIVE lock; CONCURRENTLY cannot drop several indexes or CASCADE', 'drop one index per step with DROP INDEX CONCURRENTLY IF EXISTS <name>');
      else add('drop-index-not-concurrent', 'fixed', 'DROP INDEX takes an ACCESS EXCLUSIVE lock on the table', `parity runs it as ${sql.replace(/^DROP\s+INDEX\s+/i, 'DROP INDEX CONCURRENTLY ')}`);
      continue;
    }
    if (/^(VACUUM\s+FULL|CLUSTER)\b/i.test(sql) || /^REINDEX\b(?![^(]*\bCONCURRENTLY\b)/i.test(sql)) {
      add('table-rewrite', 'error', `${sql.split(' ').slice(0, 2).join(' ')} rewrites or locks the whole table`, 'use REINDEX ... CONCURRENTLY, or pg_repack, outside the migration');
      continue;
    }
    if (phase !== 'contract') {
      if (/^(DROP\s+(TABLE|SCHEMA|VIEW|MATERIALIZED\s+VIEW|TYPE|SEQUENCE)|TRUNCATE)\b/i.test(sql)) {
        add('drop-before-contract', 'error', `${sql.split(' ').slice(0, 2).join(' ')} in ${phase} removes what the old representation (and any rollback) still needs`, 'move it to ddl.contract, which runs only after the contract gate passes');
        continue;
      }
      if (/^ALTER\s+(TABLE|INDEX|VIEW|MATERIALIZED\s+VIEW|SEQUENCE|TYPE|SCHEMA)\b.*\bRENAME\b/i.test(sql)) {
        add('rename-before-contract', 'error', `a rename in ${phase} breaks every reader and writer that still uses the old name`, 'add the new name alongside (a new column, or a view), dual-write, move readers over, and drop the old name in ddl.contract');
        continue;
      }
    }
    const alter = parseAlterTable(sql);
    if (!alter) continue;
    const table = tableName(alter.table);
    for (const action of alter.actions) {
      if (ADD_COLUMN.test(action)) {
        if (/\bNOT\s+NULL\b/i.test(action) && !/\bDEFAULT\b/i.test(action)) {
          add('add-column-not-null', 'error', 'ADD COLUMN ... NOT NULL without a default fails on a non-empty table (and needs every writer to set it at once)', 'add the column nullable in expand, backfill it, then in enforce: ADD CONSTRAINT ... CHECK (col IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT, SET NOT NULL');
        }
        if (VOLATILE_DEFAULT.test(action) || SERIAL_TYPE.test(action.replace(/^ADD\s+/i, ''))) {
          add('volatile-default', 'error', 'a volatile default (random(), clock_timestamp(), gen_random_uuid(), nextval/serial) rewrites the whole table under an ACCESS EXCLUSIVE lock', 'add the column without a default, then ALTER COLUMN ... SET DEFAULT (applies to new rows only) and backfill old rows in batches');
        }
        continue;
      }
      if (UNIQUE_OR_PK.test(action) && !/\bUSING\s+INDEX\b/i.test(action)) {
        add('unique-constraint', 'error', 'adding a UNIQUE or PRIMARY KEY constraint builds its index under a lock that blocks writes', 'CREATE UNIQUE INDEX CONCURRENTLY <name> ... in one step, then ADD CONSTRAINT <c> UNIQUE USING INDEX <name> (or PRIMARY KEY USING INDEX) in the next');
        continue;
      }
      const check = NOT_NULL_CHECK.exec(action);
      if (check) {
        const constraint = `${table}:${identName(check[1] as string)}`;
        const column = identName(check[2] as string);
        // Without NOT VALID parity splits it into NOT VALID + VALIDATE, so it ends validated.
        if (check[3]) pendingChecks.set(constraint, { table, column });
        else validatedChecks.set(table, new Set([...(validatedChecks.get(table) ?? []), column]));
      }
      if (/^ADD\s+CONSTRAINT\s+\S+\s+(CHECK|FOREIGN\s+KEY)\b/i.test(action) && !/\bNOT\s+VALID\s*$/i.test(action)) {
        if (alter.actions.length === 1) {
          add('constraint-not-valid', 'fixed', 'adding a CHECK or FOREIGN KEY constraint scans the whole table while holding a lock that blocks writes', 'parity adds it NOT VALID, then runs VALIDATE CONSTRAINT (which lets reads and writes go on)');
        } else {
          add('constraint-not-valid', 'error', 'adding a CHECK or FOREIGN KEY constraint scans the whole table while holding a lock that blocks writes', 'put the constraint in a step of its own (parity then adds it NOT VALID and validates it separately), or write NOT VALID and a VALIDATE CONSTRAINT step');
        }
      }
      const validate = VALIDATE.exec(action);
      if (validate) {
        const pending = pendingChecks.get(`${table}:${identName(validate[1] as string)}`);
        if (pending) validatedChecks.set(table, new Set([...(validatedChecks.get(table) ?? []), pending.column]));
      }
      const setNotNull = SET_NOT_NULL.exec(action);
      if (setNotNull) {
        const column = identName(setNotNull[1] as string);
        if (!validatedChecks.get(table)?.has(column)) {
          add('set-not-null-unsafe', 'error', `SET NOT NULL on ${column} scans the whole table under an ACCESS EXCLUSIVE lock (no validated CHECK (${column} IS NOT NULL) precedes it)`, `first ADD CONSTRAINT <c> CHECK (${column} IS NOT NULL) NOT VALID, then VALIDATE CONSTRAINT <c>, then SET NOT NULL (PostgreSQL 12+ uses the validated check and skips the scan); drop the check afterwards if you like`);
        }
      }
      const typeChange = TYPE_CHANGE.exec(action);
      if (typeChange) {
        add('type-change', 'error', `changing the type of ${identName(typeChange[1] as string)} rewrites the table (and its indexes) under an ACCESS EXCLUSIVE lock unless the types are binary-coercible`, 'add a new column of the new type, dual-write and backfill it, move reads, and drop the old column in ddl.contract; if the change is binary-coercible (e.g. varchar(n) to text), add /* parity:allow type-change */ to the step');
      }
      if (phase !== 'contract' && DROP_COLUMN.test(action)) {
        add('drop-before-contract', 'error', `dropping a column in ${phase} breaks the old representation while it is still in use`, 'move the drop to ddl.contract, which runs only after the contract gate passes');
      }
      if (phase !== 'contract' && /^RENAME\b/i.test(action)) {
        add('rename-before-contract', 'error', `a rename in ${phase} breaks every reader and writer that still uses the old name`, 'add the new name alongside, dual-write, move readers over, and drop the old name in ddl.contract');
      }
    }
  }
  return out;
}

/** Lints every DDL step of the spec, in phase order (expand, enforce, contract). */
export function lintDdl(ddl: Pick<Spec['ddl'], DdlPhase>): LintReport {
  const validated = new Map<string, Set<string>>();
  const pending = new Map<string, { table: string; column: string }>();
  const findings = DDL_PHASES.flatMap((phase) => lintPhase(phase, ddl[phase], validated, pending));
  return { findings, errors: findings.filter((f) => f.severity === 'error').length };
}

/** The plan of every phase, to show what parity will run. */
export function planDdl(ddl: Pick<Spec['ddl'], DdlPhase>): ReturnType<typeof planPhase> {
  return DDL_PHASES.flatMap((phase) => planPhase(phase, ddl[phase]));
}
