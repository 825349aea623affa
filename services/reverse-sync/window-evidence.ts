/**
 * The window's evidence: is the old representation current? One check runs reverse verification
 * (injected: segment verification with the sides swapped and the reverse mapping, wired by the CLI,
 * since a service does not import the reconciler), reads the reverse stream check's counts (drift it
 * confirmed since the previous check makes the window unclean), counts the unrepresentable rows
 * pending, measures the reverse slot's lag, and records a `reverse-window` evidence row whose
 * `cleanSince` the contract gate's "reverse window clean for N minutes" reads.
 */
import type pg from 'pg';
import { latestEvidence, recordEvidence } from '../core/control.js';
import type { Spec } from '../core/spec.js';
import { slotLag } from '../../connectors/postgres-source/slot.js';
import { reverseSlot } from './names.js';
import { type StreamCounts, countUnrepresentable, readPosition, readStreamCounts } from './window-store.js';

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

/** The reverse stream check as the window check saw it. */
export interface StreamEvidence extends StreamCounts {
  /** Drift the stream check confirmed since the previous window check (all of it at the first). */
  confirmedDriftSinceLast: number;
}

export interface WindowCheck {
  clean: boolean;
  cleanSince: string | null;
  verification: ReverseVerification;
  /** Null when no reverse stream check has run (a reverse sync with the stream check off, or none yet). */
  stream: StreamEvidence | null;
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
  const [unrepresentable, lag, position, previous, counts] = await Promise.all([
    countUnrepresentable(dbs.old, schema, spec.name),
    slotLag(dbs.new ?? dbs.old, reverseSlot(spec)),
    readPosition(dbs.old, schema, spec.name),
    latestEvidence(dbs.control, schema, spec.name, 'reverse-window'),
    readStreamCounts(dbs.old, schema, spec.name),
  ]);
  const stream = counts ? { ...counts, confirmedDriftSinceLast: driftSince(counts, previous?.value.stream) } : null;
  const clean = verification.passed && unrepresentable === 0 && (stream?.confirmedDriftSinceLast ?? 0) === 0;
  const before = previous?.passed && typeof previous.value.cleanSince === 'string' ? previous.value.cleanSince : null;
  const cleanSince = clean ? (before ?? now().toISOString()) : null;
  const streamText = stream
    ? `stream check ${stream.checked} keys, confirmed drift ${stream.confirmedDriftSinceLast} since the last check (${stream.confirmedDrift} in all), in flight ${stream.inFlight}`
    : 'stream check not run';
  const summary = `reverse window ${clean ? 'clean' : 'NOT clean'}: old side confirmed drift ${verification.confirmedDrift}, in flight ${verification.inFlight}; ${streamText}; unrepresentable ${unrepresentable}, reverse slot lag ${lag ? `${lag.lagBytes} bytes` : 'unknown (no slot)'}`;
  const check: WindowCheck = {
    clean,
    cleanSince,
    verification,
    stream,
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
      stream,
    },
  });
  return check;
}

/**
 * Drift confirmed by the stream check since the previous evidence: the difference of the running
 * totals (the counts never go down; a smaller total means the counts were reset, so all of it counts).
 */
function driftSince(counts: StreamCounts, previous: unknown): number {
  const before = (previous as { confirmedDrift?: unknown } | null | undefined)?.confirmedDrift;
  if (typeof before !== 'number' || before > counts.confirmedDrift) return counts.confirmedDrift;
  return counts.confirmedDrift - before;
}
