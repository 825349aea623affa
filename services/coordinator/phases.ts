/**
 * The phases of a migration, in order, and what routing (flags) each phase allows. Moving forward
 * needs the phase's gate (gates.ts); moving back changes routing and flags only, never data.
 */
import type { Flags } from './flag-model.js';

export const PHASES = ['expand', 'dual-write', 'backfill', 'verify', 'dark-reads', 'ramp', 'enforce', 'contract'] as const;
export type Phase = (typeof PHASES)[number];

export function isPhase(value: string): value is Phase {
  return (PHASES as readonly string[]).includes(value);
}

export function phaseIndex(phase: Phase): number {
  return PHASES.indexOf(phase);
}

export function nextPhase(phase: Phase): Phase | null {
  return PHASES[phaseIndex(phase) + 1] ?? null;
}

export function previousPhase(phase: Phase): Phase | null {
  return phaseIndex(phase) > 0 ? (PHASES[phaseIndex(phase) - 1] ?? null) : null;
}

export function atLeast(phase: Phase, floor: Phase): boolean {
  return phaseIndex(phase) >= phaseIndex(floor);
}

/** The earliest of several phases (the migration-wide phase of a cohort rollout). */
export function earliest(phases: readonly Phase[]): Phase {
  return phases.reduce((a, b) => (phaseIndex(b) < phaseIndex(a) ? b : a), 'contract' as Phase);
}

/**
 * Routing a phase allows at most: dual writes from `dual-write`, dark reads from `dark-reads`, new
 * reads from `ramp`. Returns each flag value that goes beyond it, with the phase it needs.
 */
export function routingViolations(phase: Phase, flags: Flags): { flag: string; needs: Phase }[] {
  const out: { flag: string; needs: Phase }[] = [];
  if (flags.dualWrite && !atLeast(phase, 'dual-write')) out.push({ flag: 'dual-write=on', needs: 'dual-write' });
  if (flags.readPercent > 0 && flags.read === 'dark' && !atLeast(phase, 'dark-reads')) out.push({ flag: 'read=dark', needs: 'dark-reads' });
  if (flags.readPercent > 0 && flags.read === 'new' && !atLeast(phase, 'ramp')) out.push({ flag: 'read=new', needs: 'ramp' });
  // Writing only the new representation is a cutover (parity cutover), which needs reads on the new path first.
  if (flags.write === 'new' && !atLeast(phase, 'ramp')) out.push({ flag: 'write=new', needs: 'ramp' });
  return out;
}

/**
 * The flag values that bring routing back within what `target` allows, given the current flags
 * (empty when nothing needs to change). Kill switches are never touched by a rollback.
 */
export function rollbackFlags(target: Phase, current: Flags): Partial<Flags> {
  const out: Partial<Flags> = {};
  if (current.write === 'new' && !atLeast(target, 'ramp')) out.write = 'old';
  if (current.dualWrite && !atLeast(target, 'dual-write')) out.dualWrite = false;
  if (current.read !== 'old' && !atLeast(target, 'dark-reads')) {
    out.read = 'old';
    out.readPercent = 0;
  } else if (current.read === 'new' && !atLeast(target, 'ramp')) {
    out.read = 'dark';
  }
  return out;
}
