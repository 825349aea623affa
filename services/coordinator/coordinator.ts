/**
 * The coordinator: the migration's phases as a protocol. It reads phases from the control schema,
 * judges gates from evidence and flags, moves phases forward only through a passing gate, moves
 * them back only where that is safe (routing and flags, never data), guards flag changes against
 * the phase, and runs the spec's DDL under the lock. Every action is audited.
 */
import type pg from 'pg';
import type { Redis } from 'ioredis';
import { ParityError } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/log.js';
import type { Registry } from '../core/metrics.js';
import type { Spec } from '../core/spec.js';
import { evidenceTable, ensureEvidenceTable } from '../core/control.js';
import { evaluateGate, verdictMoved, type ContractGate, type GateCheck, type GateResult } from './gates.js';
import { evidenceReaders, type GateInputs } from './gate-inputs.js';
import { createFlagStore, type FlagChange, type FlagStore } from './flag-store.js';
import { effectiveFlags, flagsToAssignments, type EffectiveFlags, type FlagName } from './flag-model.js';
import { appendAudit, loadPhases, readAudit, transition, type PhaseRow, type StoredAuditEntry } from './phase-store.js';
import { PHASES, earliest, isPhase, phaseIndex, previousPhase, rollbackFlags, routingViolations, type Phase } from './phases.js';
import { planPhase, type DdlAction, type DdlPhase } from './ddl-statement.js';
import { ddlProgress } from './ddl-record.js';
import { lintSpec, type LintFinding } from './lint.js';
import { runDdl, type DdlActionResult } from './ddl.js';
import { acquireLock, type MonotonicClock } from './lock.js';

export interface CoordinatorDeps {
  spec: Spec;
  /** The control database (phases, audit, evidence). */
  control: pg.Pool;
  /** The target database (DDL, fence table, DDL record). May be the same pool as `control`. */
  target: pg.Pool;
  redis: Redis;
  keyPrefix?: string;
  logger?: Logger;
  metrics?: Registry;
  now?: () => Date;
  clock?: MonotonicClock;
  /**
   * The contract gate (spec.gates.contract). The CLI wiring passes the reconciler's; the coordinator
   * does not import it (the arrow goes CLI -> coordinator and CLI -> reconciler only).
   */
  contractGate: ContractGate;
  /** Backoff and sleep for DDL retries and lock acquisition (tests make them fast). */
  ddlRetryDelay?: { initialDelayMs: number; maxDelayMs: number };
  sleep?: (ms: number) => Promise<void>;
  /**
   * Closes the cutover window (issue 23) in the contract step's own fenced transaction, which stops
   * reverse sync. Injected by the CLI wiring (reverse-sync's), like the contract gate.
   */
  closeReverseWindow?: ReverseWindowCloser;
}

/**
 * Closes the reverse window in `db` (the target database: the contract DDL's transaction, stage
 * `ddl`, or a fenced transaction after the steps, stage `after-steps`); a no-op when there is none.
 * A cross-database window lives in the source database and closes there, after the steps.
 */
export type ReverseWindowCloser = (db: Pick<pg.ClientBase, 'query'>, actor: string, stage: 'ddl' | 'after-steps') => Promise<void>;

export interface CohortStatus {
  /** '' for the migration-wide row. */
  cohort: string;
  phase: Phase;
  enteredAt: Date;
  flags: EffectiveFlags;
  gate: GateResult;
  /** Flag values beyond what the phase allows (set with --force, or the phase was rolled back). */
  warnings: string[];
}

export interface StatusReport {
  migration: string;
  /** The earliest phase over all cohorts: what migration-wide DDL may run. */
  phase: Phase;
  phases: readonly Phase[];
  cohorts: CohortStatus[];
  audit: StoredAuditEntry[];
}

export interface TransitionResult {
  migration: string;
  cohort: string;
  from: Phase;
  to: Phase;
  checks: GateCheck[];
  flagsChanged: FlagChange[];
}

export interface DdlRunResult {
  phase: DdlPhase;
  lint: LintFinding[];
  actions: DdlActionResult[];
  token: string | null;
  gate?: GateCheck[];
  dryRun: boolean;
  plan: DdlAction[];
}

function describeChecks(checks: readonly GateCheck[]): string {
  return checks.map((c) => `  ${c.passed ? 'ok  ' : 'FAIL'} ${c.name}: ${c.detail}`).join('\n');
}

export interface Coordinator {
  flags: FlagStore;
  status(options?: { cohort?: string; actor?: string; auditLimit?: number }): Promise<StatusReport>;
  advance(input: { cohort?: string; actor: string; reason: string }): Promise<TransitionResult>;
  rollback(input: { cohort?: string; actor: string; reason: string; to?: Phase }): Promise<TransitionResult>;
  setFlags(input: {
    cohort?: string;
    values: [FlagName, string][];
    actor: string;
    reason: string;
    force?: boolean;
  }): Promise<{ changed: FlagChange[]; version: number }>;
  contractChecks(): Promise<GateCheck[]>;
  runPhaseDdl(input: {
    phase: DdlPhase;
    actor: string;
    reason?: string;
    dryRun?: boolean;
    confirm?: (plan: DdlAction[], gate: GateCheck[] | undefined) => Promise<boolean>;
    onProgress?: (line: string) => void;
  }): Promise<DdlRunResult>;
}

export function createCoordinator(deps: CoordinatorDeps): Coordinator {
  const { spec } = deps;
  const migration = spec.name;
  const schema = spec.control.schema;
  const logger = deps.logger ?? silentLogger();
  const now = deps.now ?? (() => new Date());
  const flags = createFlagStore({ redis: deps.redis, migration, ...(deps.keyPrefix ? { keyPrefix: deps.keyPrefix } : {}), now });
  const { contractGate } = deps;

  /** Validates --cohort against the spec; `requireForCohorts` makes it mandatory when cohorts exist. */
  function cohortArg(cohort: string | undefined, requireForCohorts: boolean): string | undefined {
    if (cohort === undefined || cohort === '') {
      if (requireForCohorts && spec.cohorts.length > 0) {
        throw new ParityError('PARITY_BAD_INPUT', `${migration} rolls out per cohort (${spec.cohorts.join(', ')}); say which one`, {
          hint: `pass --cohort ${spec.cohorts[0]}`,
        });
      }
      return undefined;
    }
    if (spec.cohorts.length === 0)
      throw new ParityError('PARITY_BAD_INPUT', `${migration} has no cohorts, but --cohort ${cohort} was given`, {
        hint: 'drop --cohort, or list cohorts in the spec (cohorts: [eu, us])',
      });
    if (!spec.cohorts.includes(cohort))
      throw new ParityError('PARITY_BAD_INPUT', `unknown cohort "${cohort}"`, {
        hint: `the spec's cohorts are ${spec.cohorts.join(', ')}`,
      });
    return cohort;
  }

  function gateInputs(cohort: string, effective: EffectiveFlags): GateInputs {
    return {
      spec,
      cohort,
      ...evidenceReaders(deps.control, schema, migration, cohort),
      flags: effective.flags,
      ddl: (phase) => ddlProgress(deps.target, schema, migration, phase, planPhase(phase, spec.ddl[phase])),
      control: deps.control,
      now: now(),
    };
  }

  async function rowFor(cohort: string, actor: string): Promise<PhaseRow> {
    const rows = await loadPhases(deps.control, schema, migration, spec.cohorts, actor);
    const row = rows.find((r) => r.cohort === cohort);
    if (!row) throw new ParityError('PARITY_INTERNAL', `no phase row for cohort "${cohort}"`);
    return row;
  }

  async function cohortStatus(row: PhaseRow): Promise<CohortStatus> {
    const effective = await flags.read(row.cohort || undefined);
    const gate = await evaluateGate(row.phase, gateInputs(row.cohort, effective), contractGate);
    const warnings = routingViolations(row.phase, effective.flags).map(
      (v) => `${v.flag} is set but needs phase ${v.needs} (now ${row.phase})`,
    );
    for (const bad of effective.invalid) warnings.push(`ignored an invalid stored flag value ${bad}`);
    return { cohort: row.cohort, phase: row.phase, enteredAt: row.enteredAt, flags: effective, gate, warnings };
  }

  return {
    flags,

    async status(options = {}) {
      const cohort = cohortArg(options.cohort, false);
      const rows = await loadPhases(deps.control, schema, migration, spec.cohorts, options.actor ?? 'parity');
      const shown = cohort ? rows.filter((r) => r.cohort === cohort) : rows;
      const cohorts: CohortStatus[] = [];
      for (const row of shown) cohorts.push(await cohortStatus(row));
      return {
        migration,
        phase: earliest(rows.map((r) => r.phase)),
        phases: PHASES,
        cohorts,
        audit: await readAudit(deps.control, schema, migration, options.auditLimit ?? 10),
      };
    },

    async advance({ cohort: cohortOption, actor, reason }) {
      const cohort = cohortArg(cohortOption, true) ?? '';
      const row = await rowFor(cohort, actor);
      const status = await cohortStatus(row);
      const { gate } = status;
      const where = `${migration}${cohort ? ` (cohort ${cohort})` : ''}`;
      if (!gate.to)
        throw new ParityError('PARITY_PHASE', `${where} is in ${row.phase}, the last phase`, {
          hint: 'run parity contract to drop the old representation',
        });
      if (!gate.passed) {
        throw new ParityError('PARITY_GATE_FAILED', `${where} cannot leave ${gate.from} for ${gate.to}:\n${describeChecks(gate.checks)}`, {
          hint: 'fix the failing checks (parity migrate status shows their live values), then advance again',
          details: { checks: gate.checks },
        });
      }
      await transition(deps.control, schema, {
        migration,
        cohort,
        action: 'advance',
        fromPhase: gate.from,
        toPhase: gate.to,
        actor,
        reason,
        evidence: { checks: gate.checks, flags: status.flags.flags },
      });
      logger.info({ migration, cohort, from: gate.from, to: gate.to, actor }, 'phase advanced');
      return { migration, cohort, from: gate.from, to: gate.to, checks: gate.checks, flagsChanged: [] };
    },

    async rollback({ cohort: cohortOption, actor, reason, to }) {
      const cohort = cohortArg(cohortOption, true) ?? '';
      const row = await rowFor(cohort, actor);
      const where = `${migration}${cohort ? ` (cohort ${cohort})` : ''}`;
      const target = to ?? previousPhase(row.phase);
      if (!target) throw new ParityError('PARITY_PHASE', `${where} is in ${row.phase}, the first phase; there is nothing to roll back to`);
      if (!isPhase(target) || phaseIndex(target) >= phaseIndex(row.phase)) {
        throw new ParityError('PARITY_BAD_INPUT', `cannot roll ${where} back from ${row.phase} to ${target}`, {
          hint: `name an earlier phase: ${PHASES.slice(0, phaseIndex(row.phase)).join(', ')}`,
        });
      }
      if (row.phase === 'contract') {
        const progress = await ddlProgress(deps.target, schema, migration, 'contract', planPhase('contract', spec.ddl.contract));
        if (progress.applied.length > 0) {
          throw new ParityError(
            'PARITY_PHASE',
            `${where} cannot roll back: contract DDL already ran (${progress.applied.join(', ')}); the old representation is gone`,
            { hint: 'a rollback changes routing and flags only, never data; restore from backup if you must' },
          );
        }
      }
      const current = await flags.read(cohort || undefined);
      const wanted = flagsToAssignments(rollbackFlags(target, current.flags));
      let changed: FlagChange[] = [];
      if (wanted.length > 0) {
        // Routing goes back first: if the phase update then fails, the flags are merely safer.
        ({ changed } = await flags.set({
          ...(cohort ? { cohort } : {}),
          values: wanted,
          actor,
          reason: `rollback to ${target}: ${reason}`,
        }));
      }
      await transition(deps.control, schema, {
        migration,
        cohort,
        action: 'rollback',
        fromPhase: row.phase,
        toPhase: target,
        actor,
        reason,
        evidence: { flagsChanged: changed, flagsBefore: current.flags },
      });
      logger.info({ migration, cohort, from: row.phase, to: target, actor, flagsChanged: changed.length }, 'phase rolled back');
      return { migration, cohort, from: row.phase, to: target, checks: [], flagsChanged: changed };
    },

    async setFlags({ cohort: cohortOption, values, actor, reason, force }) {
      const cohort = cohortArg(cohortOption, false);
      const rows = await loadPhases(deps.control, schema, migration, spec.cohorts, actor);
      // A migration-wide value reaches every cohort without its own override: check them all.
      const affected = cohort ? rows.filter((r) => r.cohort === cohort) : rows;
      const problems: string[] = [];
      const hash = (key: string): Promise<Record<string, string>> =>
        deps.redis.hgetall(key).catch((err: Error) => {
          throw new ParityError('PARITY_REDIS', `reading flags: ${err.message}`, {
            cause: err,
            hint: 'check that Redis (infra.redis.url) is reachable',
          });
        });
      const migrationHash = await hash(flags.keys.flags());
      for (const row of affected) {
        const cohortHash = row.cohort ? await hash(flags.keys.flags(row.cohort)) : {};
        const layer = Object.fromEntries(values);
        const after = cohort
          ? effectiveFlags(migrationHash, { ...cohortHash, ...layer })
          : effectiveFlags({ ...migrationHash, ...layer }, cohortHash);
        for (const v of routingViolations(row.phase, after.flags))
          problems.push(`${v.flag} needs phase ${v.needs}; ${row.cohort ? `cohort ${row.cohort}` : migration} is in ${row.phase}`);
      }
      if (problems.length > 0 && !force) {
        throw new ParityError('PARITY_PHASE', `refusing to route ahead of the phase:\n${problems.map((p) => `  ${p}`).join('\n')}`, {
          hint: 'advance the phase first (parity migrate advance), or pass --force in an emergency (audited)',
        });
      }
      return flags.set({
        ...(cohort ? { cohort } : {}),
        values,
        actor,
        reason: problems.length > 0 ? `[forced past phase] ${reason}` : reason,
      });
    },

    async contractChecks() {
      return contractGate({ control: deps.control, now: now() });
    },

    async runPhaseDdl({ phase, actor, reason, dryRun = false, confirm, onProgress }) {
      const lint = lintSpec(spec);
      const errors = lint.findings.filter((f) => f.severity === 'error');
      if (errors.length > 0) {
        throw new ParityError(
          'PARITY_DDL_RISK',
          `the spec's DDL has ${errors.length} risky statement(s); nothing was run:\n${errors.map((f) => `  [${f.phase}] ${f.step}: ${f.rule}: ${f.message}\n      instead: ${f.alternative}`).join('\n')}`,
          {
            hint: 'change the steps as suggested (parity lint --spec FILE lists every finding)',
            details: { findings: errors },
          },
        );
      }
      const plan = planPhase(phase, spec.ddl[phase]);
      const rows = await loadPhases(deps.control, schema, migration, spec.cohorts, actor);
      const overall = earliest(rows.map((r) => r.phase));
      if (overall !== phase) {
        const where = rows.map((r) => `${r.cohort || migration}: ${r.phase}`).join(', ');
        throw new ParityError(
          'PARITY_PHASE',
          `parity ${phase} runs only when ${spec.cohorts.length > 0 ? 'the earliest cohort is' : 'the migration is'} in phase ${phase} (${where})`,
          {
            hint:
              phase === 'expand'
                ? 'expand steps run before dual writes start; roll back to expand to add more'
                : `advance to ${phase} first (parity migrate advance)`,
          },
        );
      }
      let gate: GateCheck[] | undefined;
      if (phase === 'contract') {
        gate = await contractGate({ control: deps.control, now: now() });
        if (!gate.every((c) => c.passed)) {
          throw new ParityError('PARITY_GATE_FAILED', `the contract gate does not pass; nothing was dropped:\n${describeChecks(gate)}`, {
            hint: 'fix the failing criteria, then run parity contract again',
            details: { checks: gate },
          });
        }
      }
      if (dryRun) return { phase, lint: lint.findings, actions: [], token: null, dryRun: true, plan, ...(gate ? { gate } : {}) };
      if (confirm && !(await confirm(plan, gate))) {
        throw new ParityError('PARITY_ABORTED', `parity ${phase} was not confirmed; nothing was run`, {
          hint: 'pass --yes to confirm without a prompt (automation)',
        });
      }
      const lease = await acquireLock({
        redis: deps.redis,
        fenceDb: deps.target,
        fenceSchema: schema,
        migration,
        settings: spec.lock,
        ...(deps.keyPrefix ? { keyPrefix: deps.keyPrefix } : {}),
        ...(deps.clock ? { clock: deps.clock } : {}),
        ...(deps.sleep ? { sleep: deps.sleep } : {}),
        logger,
        ...(deps.metrics ? { metrics: deps.metrics } : {}),
      });
      // The verdict above may be minutes old by now (confirmation, lock wait): judge every criterion
      // again under the lease, right before each contract statement, and refuse if anything moved.
      const verdict = gate;
      const rechecks: GateCheck[][] = [];
      const guard = verdict
        ? async (tx: pg.ClientBase | null): Promise<void> => {
            let control: Pick<pg.ClientBase, 'query'> = deps.control;
            if (tx && deps.control === deps.target) {
              // Same database: read the evidence in the DDL's own fenced transaction, and hold new
              // evidence back until it commits, so the verdict and the drop are one atomic step.
              await ensureEvidenceTable(tx, schema);
              await tx.query(`LOCK TABLE ${evidenceTable(schema)} IN SHARE MODE`);
              control = tx;
            }
            const again = await contractGate({ control, now: now() });
            rechecks.push(again);
            const moved = verdictMoved(verdict, again);
            if (moved.length > 0) {
              logger.warn({ migration, moved }, 'contract gate moved before the DDL; refused');
              throw new ParityError(
                'PARITY_GATE_FAILED',
                `the contract gate changed between its evaluation and the DDL; nothing was dropped:\n${moved.map((m) => `  ${m}`).join('\n')}\nnow:\n${describeChecks(again)}`,
                {
                  hint: 'review the new evidence (parity gate contract), then run parity contract again',
                  details: { before: verdict, now: again },
                },
              );
            }
            // Same transaction as the DDL: the window closes (and reverse sync is fenced out) only if the drop commits.
            if (tx && deps.closeReverseWindow) await deps.closeReverseWindow(tx, actor, 'ddl');
          }
        : undefined;
      try {
        const actions = await runDdl(
          {
            ...(guard ? { guard } : {}),
            db: deps.target,
            schema,
            lease,
            migration,
            actor,
            settings: spec.ddl,
            ...(deps.ddlRetryDelay ? { retryDelay: deps.ddlRetryDelay } : {}),
            ...(deps.sleep ? { sleep: deps.sleep } : {}),
            logger,
            ...(deps.metrics ? { metrics: deps.metrics } : {}),
            ...(onProgress ? { onProgress } : {}),
          },
          plan,
        );
        // Contract without transactional steps (or none at all) still ends the window, fenced by this lease.
        if (phase === 'contract' && deps.closeReverseWindow) {
          const close = deps.closeReverseWindow;
          await lease.fenced(deps.target, (client) => close(client, actor, 'after-steps'));
        }
        await appendAudit(deps.control, schema, {
          migration,
          cohort: '',
          action: phase,
          fromPhase: phase,
          toPhase: phase,
          actor,
          reason: reason ?? `parity ${phase}`,
          evidence: { token: lease.token.toString(), actions, ...(gate ? { gate, recheck: rechecks.at(-1) ?? null } : {}) },
        });
        return { phase, lint: lint.findings, actions, token: lease.token.toString(), dryRun: false, plan, ...(gate ? { gate } : {}) };
      } finally {
        await lease.release();
      }
    },
  };
}
