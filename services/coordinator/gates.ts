/**
 * The gate of each phase: the checks that must all pass to leave it for the next one. Gates read
 * only evidence, flags and the record of applied DDL (GateInputs), so they do not depend on the
 * code of the commands that produce the evidence. The contract criteria are not judged here: the
 * one contract gate (the reconciler's, `parity gate contract`) is injected by the CLI wiring as a
 * ContractGate, so the coordinator never imports the reconciler.
 */
import type pg from 'pg';
import type { StoredEvidence } from '../core/control.js';
import type { GateInputs } from './gate-inputs.js';
import { nextPhase, type Phase } from './phases.js';
import type { DdlPhase } from './ddl-statement.js';

export interface GateCheck {
  name: string;
  passed: boolean;
  /** One line with the live value and the threshold. */
  detail: string;
  value?: unknown;
  /**
   * What the verdict rests on, when it rests on recorded evidence (e.g. the evidence's time and run):
   * the contract step refuses when it differs between the first evaluation and the one under the lease.
   */
  basis?: string;
}

export interface GateResult {
  from: Phase;
  to: Phase | null;
  passed: boolean;
  checks: GateCheck[];
}

/** Where and when the contract criteria are judged. */
export interface ContractGateContext {
  /**
   * The control database's evidence: a pool, or (for the re-check right before the contract DDL)
   * the fenced transaction itself when the control and target databases are the same.
   */
  control: Pick<pg.ClientBase, 'query'>;
  now: Date;
}

/** Judges every criterion of spec.gates.contract; injected into the coordinator by the CLI wiring. */
export type ContractGate = (context: ContractGateContext) => Promise<GateCheck[]>;

/**
 * What differs between the contract verdict the operator saw and the one judged under the lease:
 * a criterion that no longer passes, appeared or disappeared, or whose evidence changed (`basis`).
 * Live measurements (CDC lag) count only by passing or not. Empty when nothing moved.
 */
export function verdictMoved(before: readonly GateCheck[], after: readonly GateCheck[]): string[] {
  const moved: string[] = [];
  const earlier = new Map(before.map((c) => [c.name, c]));
  for (const now of after) {
    const then = earlier.get(now.name);
    earlier.delete(now.name);
    if (!now.passed) moved.push(`${now.name} no longer passes: ${now.detail}`);
    else if (!then) moved.push(`${now.name} is a new criterion`);
    else if ((then.basis ?? '') !== (now.basis ?? ''))
      moved.push(`${now.name}: its evidence changed (was ${then.basis ?? 'none'}, now ${now.basis ?? 'none'})`);
  }
  for (const gone of earlier.keys()) moved.push(`${gone} is no longer judged`);
  return moved;
}

function age(e: StoredEvidence, now: Date): string {
  const s = Math.max(0, Math.round((now.getTime() - e.recordedAt.getTime()) / 1000));
  return s < 120 ? `${s}s ago` : s < 7200 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`;
}

/** The backfill phase's own check (the contract gate judges the same evidence its own way). */
export async function backfillCompleteCheck(inputs: GateInputs): Promise<GateCheck> {
  const e = await inputs.evidence('backfill');
  if (!e) return { name: 'backfill complete', passed: false, detail: 'no backfill evidence recorded (run parity backfill)' };
  const complete = e.value.complete === true;
  return {
    name: 'backfill complete',
    passed: complete && e.passed,
    detail: `${complete ? 'complete' : 'not complete'} (${age(e, inputs.now)}): ${e.summary}`,
    value: e.value,
  };
}

async function ddlApplied(inputs: GateInputs, phase: DdlPhase): Promise<GateCheck> {
  const { applied, missing } = await inputs.ddl(phase);
  const total = applied.length + missing.length;
  return {
    name: `${phase} DDL applied`,
    passed: missing.length === 0,
    detail:
      total === 0
        ? `no ${phase} steps in the spec`
        : missing.length === 0
          ? `${applied.length}/${total} steps applied`
          : `${applied.length}/${total} steps applied; missing: ${missing.join(', ')} (run parity ${phase})`,
    value: { applied, missing },
  };
}

async function verifyPassedCheck(inputs: GateInputs, afterBackfill: boolean): Promise<GateCheck[]> {
  const verify = await inputs.evidence('verify');
  if (!verify) return [{ name: 'verification passed', passed: false, detail: 'no verification recorded (run parity verify)' }];
  const checks: GateCheck[] = [{ name: 'verification passed', passed: verify.passed, detail: verify.summary, value: verify.value }];
  if (afterBackfill) {
    // A verification that ran before the backfill finished proves nothing about the copied rows.
    const backfill = await inputs.evidence('backfill');
    const after = backfill !== null && backfill.value.complete === true && verify.recordedAt >= backfill.recordedAt;
    checks.push({
      name: 'verified after the backfill completed',
      passed: after,
      detail: after
        ? `verification at ${verify.recordedAt.toISOString()}, backfill completed at ${backfill?.recordedAt.toISOString()}`
        : 'the latest verification is older than the latest backfill evidence (or the backfill is not complete): verify again',
    });
  }
  return checks;
}

/** The checks that must pass to leave `phase`. */
export async function gateChecks(phase: Phase, inputs: GateInputs, contractGate: ContractGate): Promise<GateCheck[]> {
  const { flags } = inputs;
  switch (phase) {
    case 'expand':
      return [await ddlApplied(inputs, 'expand')];
    case 'dual-write':
      return [
        {
          name: 'dual writes on',
          passed: flags.dualWrite,
          detail: flags.dualWrite
            ? 'dual-write=on'
            : 'dual-write=off (turn it on with parity flags set dual-write=on once the applications write both)',
          value: flags.dualWrite,
        },
      ];
    case 'backfill':
      return [
        { name: 'dual writes on', passed: flags.dualWrite, detail: `dual-write=${flags.dualWrite ? 'on' : 'off'}`, value: flags.dualWrite },
        await backfillCompleteCheck(inputs),
      ];
    case 'verify':
      return verifyPassedCheck(inputs, true);
    case 'dark-reads': {
      const on = flags.read === 'dark' && flags.readPercent > 0;
      return [
        {
          name: 'dark reads on',
          passed: on,
          detail: `read=${flags.read} at ${flags.readPercent}% (dark reads need read=dark and read-percent above 0)`,
          value: { read: flags.read, readPercent: flags.readPercent },
        },
        ...(await verifyPassedCheck(inputs, false)),
      ];
    }
    case 'ramp': {
      const full = flags.read === 'new' && flags.readPercent === 100;
      return [
        {
          name: 'reads on the new path at 100%',
          passed: full,
          detail: `read=${flags.read} at ${flags.readPercent}%`,
          value: { read: flags.read, readPercent: flags.readPercent },
        },
      ];
    }
    case 'enforce':
      return [await ddlApplied(inputs, 'enforce'), ...(await contractGate({ control: inputs.control, now: inputs.now }))];
    case 'contract':
      return [
        { name: 'last phase', passed: false, detail: 'contract is the last phase; run parity contract to drop the old representation' },
      ];
  }
}

export async function evaluateGate(phase: Phase, inputs: GateInputs, contractGate: ContractGate): Promise<GateResult> {
  const checks = await gateChecks(phase, inputs, contractGate);
  return { from: phase, to: nextPhase(phase), passed: checks.every((c) => c.passed), checks };
}
