/**
 * Where an application's write goes (issue 23): the cohort's `write` flag says which representation
 * is written. `new` (after `parity cutover`): the new representation only; reverse sync brings every
 * such write back to the old one, so writing the old side too would race it. `old` (before cutover,
 * and after `parity rollback`): the old representation, plus the new one while `dual-write` is on.
 * Pure: the flags come from the caller (a FlagsReader's `get`, cached for its TTL).
 */
import type { Flags } from '../coordinator/flag-model.js';

export type WriteSide = 'old' | 'new';

/** The sides a write runs on, in order: `first` always, `then` only after `first` succeeded. */
export interface WritePlan {
  first: WriteSide;
  then: WriteSide | null;
}

/**
 * The plan for one write. With `write=old` and dual-write on, `authoritative` decides which side
 * runs first (its failure fails the write and skips the other); with `write=new` only the new side
 * is written, whatever `authoritative` and `dual-write` say.
 */
export function routeWrite(flags: Pick<Flags, 'write' | 'dualWrite'>, authoritative: WriteSide = 'old'): WritePlan {
  if (flags.write === 'new') return { first: 'new', then: null };
  if (!flags.dualWrite) return { first: 'old', then: null };
  return authoritative === 'old' ? { first: 'old', then: 'new' } : { first: 'new', then: 'old' };
}
