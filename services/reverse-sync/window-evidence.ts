/**
 * The window's evidence: is the old representation current? One check runs reverse verification
 * (injected: segment verification with the sides swapped and the reverse mapping, wired by the CLI,
 * since a service does not import the reconciler), counts the unrepresentable rows pending, measures
 * the reverse slot's lag, and records a `reverse-window` evidence row whose `cleanSince` the contract
 * gate's "reverse window clean for N minutes" reads.
 */
import type pg from 'pg';
import { latestEvidence, recordEvidence } from '../core/control.js';
import type { Spec } from '../core/spec.js';
import { slotLag } from '../../connectors/postgres-source/slot.js';
import { reverseSlot } from './names.js';
import { countUnrepresentable, readPosition } from './window-store.js';

type Queryable = Pick<pg.ClientBase, 'query'>;

/** What one reverse verification found (the reconciler's verify run, sides swapped). */
export interface ReverseVerification {
  passed: boolean;
  confirmedDrift: number;
  inFlight: number;
  runId: number | null;
  summary: string;
}

/** Runs one reverse verification to its end. */
export type VerifyReverse = () => Promise<ReverseVerification>;

export interface WindowCheck {
  clean: boolean;
  cleanSince: string | null;
  verification: ReverseVerification;
  unrepresentable: number;
  lagBytes: number | null;
  applied: number;
  summary: string;
}

/**
 * Checks the window once and records the evidence. `old` is the old representation's database
 * (window state), `new` the new representation's (the reverse slot; absent: `old`),
 * `control` the control database (evidence).
 */
export async function checkWindow(
  spec: Spec,
  dbs: { old: Queryable; control: Queryable; new?: Queryable },
  verifyReverse: VerifyReverse,
  now: () => Date = () => new Date(),
): Promise<WindowCheck> {
  const schema = spec.control.schema;
  const verification = await verifyReverse();
  const [unrepresentable, lag, position, previous] = await Promise.all([
    countUnrepresentable(dbs.old, schema, spec.name),
    slotLag(dbs.new ?? dbs.old, reverseSlot(spec)),
    readPosition(dbs.old, schema, spec.name),
    latestEvidence(dbs.control, schema, spec.name, 'reverse-window'),
  ]);
  const clean = verification.passed && unrepresentable === 0;
  const before = previous?.passed && typeof previous.value.cleanSince === 'string' ? previous.value.cleanSince : null;
  const cleanSince = clean ? (before ?? now().toISOString()) : null;
  const summary = `reverse window ${clean ? 'clean' : 'NOT clean'}: old side confirmed drift ${verification.confirmedDrift}, in flight ${verification.inFlight}, unrepresentable ${unrepresentable}, reverse slot lag ${lag ? `${lag.lagBytes} bytes` : 'unknown (no slot)'}`;
  const check: WindowCheck = {
    clean,
    cleanSince,
    verification,
    unrepresentable,
    lagBytes: lag?.lagBytes ?? null,
    applied: position?.applied ?? 0,
    summary,
  };
  await recordEvidence(dbs.control, schema, {
    migration: spec.name,
    kind: 'reverse-window',
    passed: clean,
    summary,
    value: {
      cleanSince,
      confirmedDrift: verification.confirmedDrift,
      inFlight: verification.inFlight,
      verifyRunId: verification.runId,
      unrepresentable,
      lagBytes: check.lagBytes,
      applied: check.applied,
    },
  });
  return check;
}
