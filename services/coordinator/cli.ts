/**
 * The coordinator's commands: `parity migrate status|advance|rollback`, `parity flags get|set`,
 * `parity lint`, `parity expand`, `parity enforce`, `parity contract`.
 */
import { userInfo } from 'node:os';
import { createInterface } from 'node:readline/promises';
import { parseOptions, required } from '../core/options.js';
import { ParityError } from '../core/errors.js';
import { loadSpec, type LoadedSpec, type Spec } from '../core/spec.js';
import { openCoordinator, type ContractGateFactory, type CoordinatorContext } from './context.js';
import type { CohortStatus, DdlRunResult, ReverseWindowCloser, StatusReport, TransitionResult } from './coordinator.js';
import type { GateCheck } from './gates.js';
import { FLAG_NAMES, parseFlagAssignments, type EffectiveFlags } from './flag-model.js';
import type { FlagAuditEntry } from './flag-store.js';
import { isPhase, PHASES, type Phase } from './phases.js';
import { lintSpec, planDdl } from './lint.js';
import type { DdlAction, DdlPhase } from './ddl-statement.js';

const out = (text: string): void => {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
};
const err = (text: string): void => {
  process.stderr.write(text.endsWith('\n') ? text : `${text}\n`);
};

/** Who acts: --actor, else $USER, else the OS user name. */
export function resolveActor(actor: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (actor && actor.trim()) return actor.trim();
  if (env.USER) return env.USER;
  try {
    return userInfo().username || 'unknown';
  } catch {
    return 'unknown';
  }
}

function json(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2);
}

/** What the CLI wiring (services/cli/commands.ts) hands every coordinator command. */
export interface CoordinatorCommandDeps {
  /** The contract gate (the reconciler's, wired by the CLI: the coordinator does not import it). */
  contractGate: ContractGateFactory;
  /** The contract step's reverse-window closer (reverse-sync's, wired by the CLI). */
  closeReverseWindow?: (loaded: LoadedSpec) => ReverseWindowCloser;
}

/** A coordinator command: argv plus what the CLI wiring injects. */
export type CoordinatorCommand = (argv: string[], deps: CoordinatorCommandDeps) => Promise<number>;

async function withCoordinator<T>(
  loaded: LoadedSpec,
  deps: CoordinatorCommandDeps,
  fn: (ctx: CoordinatorContext) => Promise<T>,
): Promise<T> {
  const ctx = await openCoordinator(loaded, {
    contractGate: deps.contractGate,
    ...(deps.closeReverseWindow ? { closeReverseWindow: deps.closeReverseWindow } : {}),
  });
  try {
    return await fn(ctx);
  } finally {
    await ctx.close();
  }
}

function flagLine(f: EffectiveFlags): string {
  const v = f.flags;
  return `dual-write=${v.dualWrite ? 'on' : 'off'} read=${v.read} read-percent=${v.readPercent} write=${v.write} kill-backfill=${v.killBackfill ? 'on' : 'off'} kill-repair=${v.killRepair ? 'on' : 'off'}`;
}

function checkLines(checks: readonly GateCheck[]): string[] {
  return checks.map((c) => `    ${c.passed ? 'ok  ' : 'FAIL'} ${c.name}: ${c.detail}`);
}

function cohortBlock(c: CohortStatus): string[] {
  const label = c.cohort ? `cohort ${c.cohort}` : 'migration';
  const gate = c.gate.to ? `gate to ${c.gate.to}: ${c.gate.passed ? 'PASSES' : 'fails'}` : 'last phase';
  return [
    `${label}: ${c.phase} (since ${c.enteredAt.toISOString()}); ${gate}`,
    ...(c.gate.to ? checkLines(c.gate.checks) : []),
    `    flags: ${flagLine(c.flags)}`,
    ...c.warnings.map((w) => `    warning: ${w}`),
  ];
}

function statusText(r: StatusReport): string {
  const lines = [
    `${r.migration}: phase ${r.phase}${r.cohorts.length > 1 || r.cohorts[0]?.cohort ? ' (earliest cohort)' : ''}`,
    `phases: ${r.phases.join(' -> ')}`,
    '',
  ];
  for (const c of r.cohorts) lines.push(...cohortBlock(c), '');
  if (r.audit.length > 0) {
    lines.push('recent transitions:');
    for (const a of r.audit) {
      const move = a.fromPhase && a.toPhase && a.fromPhase !== a.toPhase ? `${a.fromPhase} -> ${a.toPhase}` : (a.toPhase ?? '');
      lines.push(
        `  ${a.at.toISOString()}  ${a.action.padEnd(8)} ${(a.cohort || '-').padEnd(8)} ${move.padEnd(24)} by ${a.actor}: ${a.reason}`,
      );
    }
  }
  return lines.join('\n');
}

const STATUS_USAGE = 'parity migrate status --spec FILE [--cohort C] [--json]';

/** `parity migrate status`: phases, gates with their live values, flags and recent transitions. */
export async function migrateStatusCommand(argv: string[], deps: CoordinatorCommandDeps): Promise<number> {
  const { values } = parseOptions(argv, { spec: { type: 'string' }, cohort: { type: 'string' }, json: { type: 'boolean' } }, STATUS_USAGE);
  const loaded = loadSpec(required(values.spec, '--spec', STATUS_USAGE));
  const report = await withCoordinator(loaded, deps, (ctx) =>
    ctx.coordinator.status({ ...(values.cohort ? { cohort: values.cohort } : {}), actor: resolveActor(undefined) }),
  );
  out(values.json ? json(report) : statusText(report));
  return 0;
}

function transitionText(r: TransitionResult, verb: string): string {
  const lines = [`${r.migration}${r.cohort ? ` (cohort ${r.cohort})` : ''}: ${verb} ${r.from} -> ${r.to}`];
  if (r.checks.length > 0) lines.push(...checkLines(r.checks));
  for (const c of r.flagsChanged) lines.push(`    flag ${c.name}: ${c.old || '(default)'} -> ${c.new}`);
  return lines.join('\n');
}

const ADVANCE_USAGE = 'parity migrate advance --spec FILE [--cohort C] --reason TEXT [--actor NAME] [--json]';

/** `parity migrate advance`: moves one phase forward when its gate passes; prints why not otherwise. */
export async function migrateAdvanceCommand(argv: string[], deps: CoordinatorCommandDeps): Promise<number> {
  const { values } = parseOptions(
    argv,
    {
      spec: { type: 'string' },
      cohort: { type: 'string' },
      reason: { type: 'string' },
      actor: { type: 'string' },
      json: { type: 'boolean' },
    },
    ADVANCE_USAGE,
  );
  const loaded = loadSpec(required(values.spec, '--spec', ADVANCE_USAGE));
  const reason = required(values.reason, '--reason', ADVANCE_USAGE);
  const result = await withCoordinator(loaded, deps, (ctx) =>
    ctx.coordinator.advance({ ...(values.cohort ? { cohort: values.cohort } : {}), actor: resolveActor(values.actor), reason }),
  );
  out(values.json ? json(result) : transitionText(result, 'advanced'));
  return 0;
}

const ROLLBACK_USAGE = `parity migrate rollback --spec FILE [--cohort C] --reason TEXT [--to PHASE] [--actor NAME] [--json]`;

/** `parity migrate rollback`: one phase back (or --to), putting routing and flags back; never data. */
export async function migrateRollbackCommand(argv: string[], deps: CoordinatorCommandDeps): Promise<number> {
  const { values } = parseOptions(
    argv,
    {
      spec: { type: 'string' },
      cohort: { type: 'string' },
      reason: { type: 'string' },
      to: { type: 'string' },
      actor: { type: 'string' },
      json: { type: 'boolean' },
    },
    ROLLBACK_USAGE,
  );
  const loaded = loadSpec(required(values.spec, '--spec', ROLLBACK_USAGE));
  const reason = required(values.reason, '--reason', ROLLBACK_USAGE);
  let to: Phase | undefined;
  if (values.to !== undefined) {
    if (!isPhase(values.to))
      throw new ParityError('PARITY_BAD_INPUT', `unknown phase "${values.to}"`, { hint: `phases are ${PHASES.join(', ')}` });
    to = values.to;
  }
  const result = await withCoordinator(loaded, deps, (ctx) =>
    ctx.coordinator.rollback({
      ...(values.cohort ? { cohort: values.cohort } : {}),
      actor: resolveActor(values.actor),
      reason,
      ...(to ? { to } : {}),
    }),
  );
  out(values.json ? json(result) : transitionText(result, 'rolled back'));
  return 0;
}

function auditLines(entries: readonly FlagAuditEntry[]): string[] {
  return entries.map(
    (e) => `  ${e.at}  ${(e.scope || '-').padEnd(8)} ${e.flag}: ${e.old || '(default)'} -> ${e.new} by ${e.actor}: ${e.reason}`,
  );
}

const FLAGS_GET_USAGE = 'parity flags get --spec FILE [--cohort C] [--audit N] [--json]';

/** `parity flags get`: effective flag values with where each comes from, and the latest changes. */
export async function flagsGetCommand(argv: string[], deps: CoordinatorCommandDeps): Promise<number> {
  const { values } = parseOptions(
    argv,
    { spec: { type: 'string' }, cohort: { type: 'string' }, audit: { type: 'string' }, json: { type: 'boolean' } },
    FLAGS_GET_USAGE,
  );
  const loaded = loadSpec(required(values.spec, '--spec', FLAGS_GET_USAGE));
  const { spec } = loaded;
  if (values.cohort && !spec.cohorts.includes(values.cohort)) {
    throw new ParityError('PARITY_BAD_INPUT', `unknown cohort "${values.cohort}"`, {
      hint: spec.cohorts.length ? `the spec's cohorts are ${spec.cohorts.join(', ')}` : 'this migration has no cohorts; drop --cohort',
    });
  }
  const auditCount = values.audit === undefined ? 10 : Number(values.audit);
  if (!Number.isInteger(auditCount) || auditCount < 0)
    throw new ParityError('PARITY_BAD_INPUT', `--audit must be a whole number, got "${values.audit}"`, { hint: FLAGS_GET_USAGE });
  const { effective, audit } = await withCoordinator(loaded, deps, async (ctx) => ({
    effective: await ctx.coordinator.flags.read(values.cohort),
    audit: auditCount > 0 ? await ctx.coordinator.flags.audit(auditCount) : [],
  }));
  if (values.json) {
    out(json({ migration: spec.name, cohort: values.cohort ?? null, ...effective, audit }));
    return 0;
  }
  const lines = [`${spec.name}${values.cohort ? ` (cohort ${values.cohort})` : ''} flags:`];
  const fields: Record<string, keyof EffectiveFlags['flags']> = {
    'dual-write': 'dualWrite',
    read: 'read',
    'read-percent': 'readPercent',
    write: 'write',
    'kill-backfill': 'killBackfill',
    'kill-repair': 'killRepair',
  };
  for (const name of FLAG_NAMES) {
    const field = fields[name] as keyof EffectiveFlags['flags'];
    const v = effective.flags[field];
    lines.push(`  ${name.padEnd(14)} ${String(typeof v === 'boolean' ? (v ? 'on' : 'off') : v).padEnd(6)} (${effective.sources[field]})`);
  }
  for (const bad of effective.invalid) lines.push(`  warning: ignored invalid stored value ${bad}`);
  if (audit.length > 0) lines.push('recent changes:', ...auditLines(audit));
  out(lines.join('\n'));
  return 0;
}

const FLAGS_SET_USAGE = 'parity flags set --spec FILE [--cohort C] NAME=VALUE ... --reason TEXT [--actor NAME] [--force] [--json]';

/** `parity flags set`: sets flags atomically with their audit entries; refuses routing ahead of the phase. */
export async function flagsSetCommand(argv: string[], deps: CoordinatorCommandDeps): Promise<number> {
  const { values, positionals } = parseOptions(
    argv,
    {
      spec: { type: 'string' },
      cohort: { type: 'string' },
      reason: { type: 'string' },
      actor: { type: 'string' },
      force: { type: 'boolean' },
      json: { type: 'boolean' },
    },
    FLAGS_SET_USAGE,
  );
  const loaded = loadSpec(required(values.spec, '--spec', FLAGS_SET_USAGE));
  const reason = required(values.reason, '--reason', FLAGS_SET_USAGE);
  const assignments = parseFlagAssignments(positionals);
  const result = await withCoordinator(loaded, deps, (ctx) =>
    ctx.coordinator.setFlags({
      ...(values.cohort ? { cohort: values.cohort } : {}),
      values: assignments,
      actor: resolveActor(values.actor),
      reason,
      force: values.force ?? false,
    }),
  );
  if (values.json) out(json(result));
  else if (result.changed.length === 0) out('no change (the flags already had these values)');
  else out(result.changed.map((c) => `${c.name}: ${c.old || '(default)'} -> ${c.new}`).join('\n'));
  return 0;
}

const LINT_USAGE = 'parity lint --spec FILE [--json]';

/** `parity lint`: risky DDL statements with the safe alternative; exit 1 when any is an error. */
export async function lintCommand(argv: string[]): Promise<number> {
  const { values } = parseOptions(argv, { spec: { type: 'string' }, json: { type: 'boolean' } }, LINT_USAGE);
  const loaded = loadSpec(required(values.spec, '--spec', LINT_USAGE));
  const { spec } = loaded;
  const report = lintSpec(spec);
  if (values.json) {
    out(json({ ...report, plan: planDdl(spec.ddl) }));
  } else {
    for (const f of report.findings) {
      out(
        `${f.severity}${f.severity === 'warning' ? ' ' : '  '}[${f.phase}] ${f.step}: ${f.rule}\n       ${f.message}\n       ${f.severity === 'fixed' ? 'made safe' : f.severity === 'warning' ? 'consider' : 'instead'}: ${f.alternative}`,
      );
    }
    const warnings = report.findings.filter((f) => f.severity === 'warning').length;
    out(
      report.findings.length === 0
        ? 'ok: no risky DDL'
        : `${report.errors} error(s), ${report.findings.length - report.errors - warnings} made safe by parity${warnings ? `, ${warnings} warning(s)` : ''}`,
    );
  }
  return report.errors > 0 ? 1 : 0;
}

function planText(plan: readonly DdlAction[]): string {
  return plan
    .map(
      (a) =>
        `  ${a.name}: ${a.sql}${a.transactional ? '' : ' (outside a transaction)'}${a.rewrittenFrom ? `\n      (the spec says: ${a.rewrittenFrom})` : ''}`,
    )
    .join('\n');
}

function ddlText(r: DdlRunResult): string {
  if (r.dryRun) return `parity ${r.phase} --dry-run: would run\n${planText(r.plan) || '  (no steps)'}`;
  const applied = r.actions.filter((a) => a.status === 'applied').length;
  const skipped = r.actions.length - applied;
  return `parity ${r.phase}: ${applied} applied, ${skipped} already applied (fencing token ${r.token})`;
}

async function promptConfirm(spec: Spec, plan: readonly DdlAction[]): Promise<boolean> {
  err(`parity contract will run, and this cannot be rolled back:\n${planText(plan)}`);
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`type the migration name (${spec.name}) to confirm: `);
    return answer.trim() === spec.name;
  } finally {
    rl.close();
  }
}

async function ddlCommand(phase: DdlPhase, argv: string[], deps: CoordinatorCommandDeps): Promise<number> {
  const usage = `parity ${phase} --spec FILE [--dry-run] [--reason TEXT] [--actor NAME]${phase === 'contract' ? ' [--yes]' : ''} [--json]`;
  const options = {
    spec: { type: 'string' },
    'dry-run': { type: 'boolean' },
    reason: { type: 'string' },
    actor: { type: 'string' },
    json: { type: 'boolean' },
    yes: { type: 'boolean' },
  } as const;
  const { values } = parseOptions(argv, options, usage);
  if (values.yes !== undefined && phase !== 'contract')
    throw new ParityError('PARITY_BAD_INPUT', `--yes is only for parity contract`, { hint: `usage: ${usage}` });
  const loaded = loadSpec(required(values.spec, '--spec', usage));
  const { spec } = loaded;
  const yes = values.yes === true;
  const dryRun = values['dry-run'] === true;
  if (phase === 'contract' && !yes && !dryRun && !process.stdin.isTTY) {
    throw new ParityError('PARITY_ABORTED', 'parity contract needs confirmation: no terminal to ask and no --yes; nothing was run', {
      hint: 'pass --yes in automation once the contract gate report was reviewed',
    });
  }
  const result = await withCoordinator(loaded, deps, (ctx) =>
    ctx.coordinator.runPhaseDdl({
      phase,
      actor: resolveActor(values.actor),
      ...(values.reason ? { reason: values.reason } : {}),
      dryRun,
      onProgress: err,
      ...(phase === 'contract' && !yes ? { confirm: (plan: DdlAction[]) => promptConfirm(spec, plan) } : {}),
    }),
  );
  out(values.json ? json(result) : ddlText(result));
  return 0;
}

/** `parity expand`: runs spec.ddl.expand (lint first, then under the lock with timeouts). */
export const expandCommand: CoordinatorCommand = (argv, deps) => ddlCommand('expand', argv, deps);
/** `parity enforce`: runs spec.ddl.enforce (constraints NOT VALID then VALIDATE, SET NOT NULL). */
export const enforceCommand: CoordinatorCommand = (argv, deps) => ddlCommand('enforce', argv, deps);
/** `parity contract`: runs spec.ddl.contract once the contract gate passes and the operator confirms. */
export const contractCommand: CoordinatorCommand = (argv, deps) => ddlCommand('contract', argv, deps);
