/**
 * Reading the spec's DDL steps: the statement classified by PostgreSQL's parser (core/sql-parse.ts),
 * comments stripped (outside quotes), and the plan of what parity will actually run. The plan makes
 * two statement kinds safe by itself: a CREATE/DROP INDEX is run CONCURRENTLY (outside a
 * transaction), and a CHECK or FOREIGN KEY constraint is added NOT VALID and validated in a second
 * statement (the validation takes a lock that lets reads and writes go on).
 */

import { parseStatements, type ParsedStatement, type PgNode } from '../core/sql-parse.js';

export type DdlPhase = 'expand' | 'enforce' | 'contract';
export const DDL_PHASES: readonly DdlPhase[] = ['expand', 'enforce', 'contract'];

export interface DdlStep {
  name: string;
  sql: string;
}

/** One statement parity runs. A step is one action, or two when a constraint is split. */
export interface DdlAction {
  phase: DdlPhase;
  /** The spec step it comes from. */
  step: string;
  /** Unique within the phase: the step name, or "<step> (validate)" for the validation half. */
  name: string;
  sql: string;
  /** False for CONCURRENTLY statements, which PostgreSQL refuses inside a transaction. */
  transactional: boolean;
  /** For CREATE INDEX CONCURRENTLY: where to look for an invalid index a failed build left. */
  index?: { name: string; table: string };
  /** The table the statement locks, when known (to name blockers after a lock timeout). */
  table?: string;
  /** The step's own SQL when parity runs something else (made concurrent, or split). */
  rewrittenFrom?: string;
}

export const IDENT = String.raw`(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)`;
export const QUALIFIED = String.raw`${IDENT}(?:\s*\.\s*${IDENT})?`;

/**
 * Strips comments and collapses whitespace outside string literals and quoted identifiers, and
 * drops a trailing semicolon. Returns the cleaned SQL and the `parity:allow <rule>, ...`
 * directives found in comments.
 */
export function cleanSql(sql: string): { sql: string; allow: Set<string> } {
  const allow = new Set<string>();
  let out = '';
  let i = 0;
  const directive = (comment: string): void => {
    const m = /parity:allow\s+([a-z0-9,\s-]+)/i.exec(comment);
    if (m?.[1]) for (const rule of m[1].split(/[,\s]+/)) if (rule) allow.add(rule.toLowerCase());
  };
  while (i < sql.length) {
    const ch = sql[i] as string;
    if (ch === "'" || ch === '"') {
      let j = i + 1;
      while (j < sql.length) {
        if (sql[j] === ch) {
          if (sql[j + 1] === ch) j += 2;
          else break;
        } else j++;
      }
      out += sql.slice(i, j + 1);
      i = j + 1;
    } else if (ch === '-' && sql[i + 1] === '-') {
      const end = sql.indexOf('\n', i);
      directive(sql.slice(i, end < 0 ? sql.length : end));
      if (!out.endsWith(' ')) out += ' ';
      i = end < 0 ? sql.length : end;
    } else if (ch === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2);
      directive(sql.slice(i, end < 0 ? sql.length : end));
      if (!out.endsWith(' ')) out += ' ';
      i = end < 0 ? sql.length : end + 2;
    } else if (/\s/.test(ch)) {
      if (!out.endsWith(' ')) out += ' ';
      i++;
    } else {
      out += ch;
      i++;
    }
  }
  return { sql: out.trim().replace(/\s*;$/, '').trim(), allow };
}

/** Splits at top-level commas (outside parentheses and quotes). */
export function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quote: string | null = null;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quote) {
      if (ch === quote) quote = null;
    } else if (ch === "'" || ch === '"') quote = ch;
    else if (ch === '(') depth++;
    else if (ch === ')') depth--;
    else if (ch === ',' && depth === 0) {
      parts.push(text.slice(start, i).trim());
      start = i + 1;
    }
  }
  parts.push(text.slice(start).trim());
  return parts.filter((p) => p.length > 0);
}

/** Lower-cases an unquoted identifier and unquotes a quoted one, as PostgreSQL resolves them. */
export function identName(raw: string): string {
  const t = raw.trim();
  return t.startsWith('"') ? t.slice(1, -1).replace(/""/g, '"') : t.toLowerCase();
}

/** A table reference as "schema.table" (unqualified means public), for comparing references. */
export function tableName(raw: string): string {
  const parts = raw.match(new RegExp(IDENT, 'g')) ?? [];
  const names = parts.map(identName);
  return names.length >= 2 ? `${names[0]}.${names[1]}` : `public.${names[0] ?? ''}`;
}

export interface AlterTable {
  /** The table as written. */
  table: string;
  /** "ALTER TABLE [IF EXISTS] [ONLY] <table>" as written. */
  head: string;
  /** Each comma-separated action. */
  actions: string[];
}

const ALTER_TABLE = new RegExp(String.raw`^(ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?(${QUALIFIED})(?:\s*\*)?)\s+(.*)$`, 'is');

export function parseAlterTable(sql: string): AlterTable | null {
  const m = ALTER_TABLE.exec(sql);
  if (!m) return null;
  return { head: m[1] as string, table: m[2] as string, actions: splitTopLevel(m[3] as string) };
}

const CREATE_INDEX = new RegExp(
  String.raw`^CREATE\s+(UNIQUE\s+)?INDEX\s+(CONCURRENTLY\s+)?(IF\s+NOT\s+EXISTS\s+)?(?:(?!ON\b)(${IDENT})\s+)?ON\s+(?:ONLY\s+)?(${QUALIFIED})`,
  'is',
);

export interface CreateIndex {
  unique: boolean;
  concurrently: boolean;
  name: string | undefined;
  table: string;
}

export function parseCreateIndex(sql: string): CreateIndex | null {
  const m = CREATE_INDEX.exec(sql);
  if (!m) return null;
  return { unique: Boolean(m[1]), concurrently: Boolean(m[2]), name: m[4], table: m[5] as string };
}

const DROP_INDEX = /^DROP\s+INDEX\s+(CONCURRENTLY\s+)?/i;
const ADD_CHECK_OR_FK = new RegExp(String.raw`^ADD\s+CONSTRAINT\s+(${IDENT})\s+(CHECK|FOREIGN\s+KEY)\b`, 'i');
const NOT_VALID = /\bNOT\s+VALID\s*$/i;

/** The statement as PostgreSQL's parser reads it; undefined when it does not parse (validation refuses that). */
function parsed(sql: string): ParsedStatement | undefined {
  try {
    return parseStatements(sql)[0];
  } catch {
    return undefined;
  }
}

const hasOption = (options: unknown, name: string): boolean =>
  Array.isArray(options) && options.some((o) => ((o as PgNode).DefElem as PgNode | undefined)?.defname === name);

/**
 * CREATE INDEX / DROP INDEX / REINDEX ... CONCURRENTLY, VACUUM, CREATE/DROP DATABASE and ALTER SYSTEM
 * cannot run in a transaction block. Read from the parse tree, so a string literal or a body that
 * mentions CONCURRENTLY does not count.
 */
export function isTransactional(sql: string): boolean {
  const stmt = parsed(sql);
  if (!stmt) return !/\bCONCURRENTLY\b/i.test(sql) && !/^(VACUUM|CREATE\s+DATABASE|DROP\s+DATABASE|ALTER\s+SYSTEM)\b/i.test(sql);
  switch (stmt.type) {
    case 'IndexStmt':
    case 'DropStmt':
      return !stmt.node.concurrent;
    case 'ReindexStmt':
      return !hasOption(stmt.node.params, 'concurrently');
    case 'VacuumStmt':
    case 'CreatedbStmt':
    case 'DropdbStmt':
    case 'AlterSystemStmt':
      return false;
    default:
      return true;
  }
}

/** The plan for one phase's steps, in order. */
export function planPhase(phase: DdlPhase, steps: readonly DdlStep[]): DdlAction[] {
  const actions: DdlAction[] = [];
  for (const step of steps) {
    const stmt = parsed(step.sql);
    // A DO block or function body is dollar-quoted: run it exactly as written (the comment and
    // whitespace cleaner knows nothing of dollar quotes). Everything else runs cleaned.
    const verbatim = stmt?.type === 'DoStmt' || stmt?.type === 'CreateFunctionStmt';
    const sql = verbatim ? step.sql.trim().replace(/;\s*$/, '') : cleanSql(step.sql).sql;
    // The parser decides the kind; the patterns below only locate the words to rewrite.
    const is = (type: string): boolean => stmt === undefined || stmt.type === type;
    const index = is('IndexStmt') ? parseCreateIndex(sql) : null;
    if (index) {
      const run = index.concurrently ? sql : sql.replace(/^(CREATE\s+(?:UNIQUE\s+)?INDEX)\s+/i, '$1 CONCURRENTLY ');
      actions.push({
        phase,
        step: step.name,
        name: step.name,
        sql: run,
        transactional: false,
        table: index.table,
        ...(index.name ? { index: { name: identName(index.name), table: index.table } } : {}),
        ...(run !== sql ? { rewrittenFrom: sql } : {}),
      });
      continue;
    }
    const dropIndex = is('DropStmt') ? DROP_INDEX.exec(sql) : null;
    if (dropIndex && !dropIndex[1] && !/\bCASCADE\b/i.test(sql) && !sql.includes(',')) {
      actions.push({
        phase,
        step: step.name,
        name: step.name,
        sql: sql.replace(DROP_INDEX, 'DROP INDEX CONCURRENTLY '),
        transactional: false,
        rewrittenFrom: sql,
      });
      continue;
    }
    const alter = is('AlterTableStmt') ? parseAlterTable(sql) : null;
    const only = alter?.actions.length === 1 ? alter.actions[0] : undefined;
    const constraint = only ? ADD_CHECK_OR_FK.exec(only) : null;
    if (alter && constraint && !NOT_VALID.test(sql)) {
      const validateHead = alter.head.replace(/\s+IF\s+EXISTS\b/i, '');
      actions.push({
        phase,
        step: step.name,
        name: step.name,
        sql: `${sql} NOT VALID`,
        transactional: true,
        table: alter.table,
        rewrittenFrom: sql,
      });
      actions.push({
        phase,
        step: step.name,
        name: `${step.name} (validate)`,
        sql: `${validateHead} VALIDATE CONSTRAINT ${constraint[1]}`,
        transactional: true,
        table: alter.table,
        rewrittenFrom: sql,
      });
      continue;
    }
    actions.push({
      phase,
      step: step.name,
      name: step.name,
      sql,
      transactional: isTransactional(sql),
      ...(alter ? { table: alter.table } : {}),
    });
  }
  return actions;
}
