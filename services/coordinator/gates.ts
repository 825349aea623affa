/**
 * The gate of each phase: the checks that must all pass to leave it for the next one. Gates read
 * only evidence, flags and the record of applied DDL (GateInputs), so they do not depend on the
 * code of the commands that produce the evidence.
 */
import { backfillCompleteCheck, contractCriteria, type GateCheck } from './contract-criteria.js';
import type { GateInputs } from './gate-inputs.js';
import { nextPhase, type Phase } from './phases.js';
import type { DdlPhase } from './ddl-statement.js';

export type { GateCheck };

export interface GateResult {
  from: Phase;
  to: Phase | null;
  passed: boolean;
  checks: GateCheck[];
}

/** Judges the contract criteria; the default reads evidence itself (contract-criteria.ts). */
export type ContractGate = (inputs: GateInputs) => Promise<GateCheck[]>;

async function ddlApplied(inputs: GateInputs, phase: DdlPhase): Promise<GateCheck> {
  const { applied, missing } = await inputs.ddl(phase);
  const total = applied.length + missing.length;
  return {
    name: `${phase} DDL applied`,
    passed: missing.length === 0,
    detail: total === 0 ? `no ${phase} steps in the spec` : missing.length === 0 ? `${applied.length}/${total} steps applied` : `${applied.length}/${total} steps applied; missing: ${missing.join(', ')} (run parity ${phase})`,
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
      detail: after ? `verification at ${verify.recordedAt.toISOString()}, backfill completed at ${backfill?.recordedAt.toISOString()}` : 'the latest verification is older than the latest backfill evidence (or the backfill is not complete): verify again',
    });
  }
  return checks;
}

/** The checks that must pass to leave `phase`. */
export async function gateChecks(phase: Phase, inputs: GateInputs, contractGate: ContractGate = contractCriteria): Promise<GateCheck[]> {
  const { flags } = inputs;
  switch (phase) {
    case 'expand':
      return [await ddlApplied(inputs, 'expand')];
    case 'dual-write':
      return [{ name: 'dual writes on', passed: flags.dualWrite, detail: flags.dualWrite ? 'dual-write=on' : 'dual-write=off (turn it on with parity flags set dual-write=on once the applications write both)', value: flags.dualWrite }];
    case 'backfill':
      return [{ name: 'dual writes on', passed: flags.dualWrite, detail: `dual-write=${flags.dualWrite ? 'on' : 'off'}`, value: flags.dualWrite }, await backfillCompleteCheck(inputs)];
    case 'verify':
      return verifyPassedCheck(inputs, true);
    case 'dark-reads': {
      const on = flags.read === 'dark' && flags.readPercent > 0;
      return [
        { name: 'dark reads on', passed: on, detail: `read=${flags.read} at ${flags.readPercent}% (dark reads need read=dark and read-percent above 0)`, value: { read: flags.read, readPercent: flags.readPercent } },
        ...(await verifyPassedCheck(inputs, false)),
      ];
    }
    case 'ramp': {
      const full = flags.read === 'new' && flags.readPercent === 100;
      return [{ name: 'reads on the new path at 100%', passed: full, detail: `read=${flags.read} at ${flags.readPercent}%`, value: { read: flags.read, readPercent: flags.readPercent } }];
    }
    case 'enforce':
      return [await ddlApplied(inputs, 'enforce'), ...(await contractGate(inputs))];
    case 'contract':
      return [{ name: 'last phase', passed: false, detail: 'contract is the last phase; run parity contract to drop the old representation' }];
  }
}

export async function evaluateGate(phase: Phase, inputs: GateInputs, contractGate?: ContractGate): Promise<GateResult> {
  const checks = await gateChecks(phase, inputs, contractGate);
  return { from: phase, to: nextPhase(phase), passed: checks.every((c) => c.passed), checks };
}
