/**
 * The cutover window as the status page shows it (issue 23): the window's state, cohorts, applied
 * position, unrepresentable rows and stream check counts (in the old representation's database),
 * the reverse slot's lag (in the new representation's), joined with the latest `reverse-window`
 * evidence. It lives in the CLI layer, which depends on both services: the status page does not
 * import reverse sync.
 */
import type pg from 'pg';
import { tableExists } from '../core/control.js';
import { formatLsn } from '../core/lsn.js';
import type { Spec } from '../core/spec.js';
import { slotLag } from '../../connectors/postgres-source/slot.js';
import { reverseSlot } from '../reverse-sync/names.js';
import { countUnrepresentable, readCohorts, readPosition, readStreamCounts, readWindow } from '../reverse-sync/window-store.js';
import type { ReverseWindowReader } from '../status/collect.js';

function num(v: unknown): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : Number.NaN;
  return Number.isFinite(n) ? n : 0;
}

/**
 * A reader of the window for the status page. `old` is the old representation's database (the
 * source: window tables), `newSide` the new one's where the reverse slot is (default `old`;
 * cross-database: the target).
 */
export function reverseWindowReader(spec: Spec, dbs: { old: pg.Pool; newSide?: pg.Pool }): ReverseWindowReader {
  const schema = spec.control.schema;
  return async (latest) => {
    // No window table: no cutover ever ran; the status page creates nothing.
    if (!spec.reverse || !(await tableExists(dbs.old, schema, 'reverse_windows'))) return null;
    const window = await readWindow(dbs.old, schema, spec.name);
    if (!window) return null;
    const [cohorts, position, unrepresentable, stream, lag] = await Promise.all([
      readCohorts(dbs.old, schema, spec.name),
      readPosition(dbs.old, schema, spec.name),
      countUnrepresentable(dbs.old, schema, spec.name),
      readStreamCounts(dbs.old, schema, spec.name),
      slotLag(dbs.newSide ?? dbs.old, reverseSlot(spec)),
    ]);
    const v = latest?.value;
    const s = v?.stream as Record<string, unknown> | null | undefined;
    return {
      state: window.state,
      openedAt: window.openedAt.toISOString(),
      closedAt: window.closedAt?.toISOString() ?? null,
      cohorts: cohorts.map((c) => ({ cohort: c.cohort || '(all)', state: c.state, changedAt: c.changedAt.toISOString() })),
      applied: position
        ? {
            position: `${formatLsn(position.commitLsn)}/${position.ordinal}`,
            keys: position.applied,
            at: position.updatedAt?.toISOString() ?? null,
          }
        : null,
      slot: { name: reverseSlot(spec), lagBytes: lag?.lagBytes ?? null },
      unrepresentable,
      stream,
      evidence:
        latest && v
          ? {
              clean: latest.passed,
              cleanSince: typeof v.cleanSince === 'string' ? v.cleanSince : null,
              recordedAt: latest.recordedAt,
              summary: latest.summary,
              segment: {
                confirmedDrift: num(v.confirmedDrift),
                inFlight: num(v.inFlight),
                runId: v.verifyRunId === null || v.verifyRunId === undefined ? null : num(v.verifyRunId),
              },
              stream: s
                ? {
                    confirmedDriftSinceLast: num(s.confirmedDriftSinceLast),
                    confirmedDrift: num(s.confirmedDrift),
                    inFlight: num(s.inFlight),
                  }
                : null,
            }
          : null,
    };
  };
}
