/**
 * The wiring of reverse verification: the reconciler's segment verification run with the sides
 * swapped (the new representation as the source, the old one as the target) and the reverse mapping
 * as the mapping, under its own migration name so its runs and evidence never mix with the forward
 * ones, and with the reverse slot as the position rows in flight are rechecked against; and the
 * reconciler's stream check (`checkChanges`) with the same swapped spec, fed the keys reverse sync
 * applied. It lives in the CLI layer, the only one that depends on both services, so reverse sync
 * never imports the reconciler.
 */
import type pg from 'pg';
import type { Logger } from '../core/log.js';
import type { Registry } from '../core/metrics.js';
import { type LoadedSpec, type Spec, controlDatabase, specHash, targetDatabase } from '../core/spec.js';
import { ensureReconcilerTables, tables } from '../reconciler/control-store.js';
import { postgresDialect } from '../reconciler/dialect.js';
import { buildProjection } from '../reconciler/projection.js';
import { connectPg, openReadSession, openWriteSession } from '../reconciler/snapshot.js';
import { type ChangeToCheck, checkChanges } from '../reconciler/stream-reconcile.js';
import { DEFAULT_VERIFY_OPTIONS, runVerify } from '../reconciler/verify.js';
import { reverseSlot, reverseVerifyName, windowTables } from '../reverse-sync/names.js';
import type { OpenReverseStreamChecker, StreamCheckResult } from '../reverse-sync/stream-check.js';
import type { VerifyReverse } from '../reverse-sync/window-evidence.js';

/** The spec that verifies the old side against reverse(new). */
export function reverseSpec(spec: Spec): Spec {
  const reverse = spec.reverse;
  if (!reverse) throw new Error('reverseSpec needs a spec with reverse');
  const { from, to } = windowTables(spec);
  const swapped: Spec = {
    ...spec,
    name: reverseVerifyName(spec),
    // Cross-database: the new side (the target database) is the source and the old table the
    // target; the control database stays the forward spec's (its default follows the target).
    source: { database: targetDatabase(spec), schema: from.schema, table: from.table },
    target:
      spec.target.kind === 'same-table'
        ? { kind: 'same-table' }
        : spec.target.kind === 'shadow-table'
          ? { kind: 'shadow-table', schema: to.schema, table: to.table }
          : { kind: 'other-database', database: spec.source.database, schema: to.schema, table: to.table },
    control: { ...spec.control, database: controlDatabase(spec) },
    mapping: reverse.mapping,
    cdc: { ...spec.cdc, slot: reverseSlot(spec) },
  };
  delete swapped.reverse;
  return swapped;
}

export function reconcilerVerifyReverse(loaded: LoadedSpec, deps: { logger: Logger; registry: Registry; jobs?: number }): VerifyReverse {
  const spec = reverseSpec(loaded.spec);
  const reversed: LoadedSpec = { spec, file: loaded.file, configHash: specHash(spec) };
  return async () => {
    const outcome = await runVerify(
      reversed,
      // newRun false: a check started while another process verifies (run and check at once) joins its run.
      { ...DEFAULT_VERIFY_OPTIONS, jobs: deps.jobs ?? Math.min(2, loaded.spec.reconcile.jobs), newRun: false },
      { logger: deps.logger, registry: deps.registry },
    );
    const r = outcome.result;
    return { passed: r.passed, confirmedDrift: r.confirmedDrift, inFlight: r.inFlight, runId: r.runId, summary: r.verdict };
  };
}

/**
 * The reverse stream check: each applied key's new row (the swapped spec's source) mapped by the
 * reverse mapping, compared with the old row (its target) by the reconciler's `checkChanges`.
 * Confirmed drift is recorded in the control schema's `reconcile_mismatches` under the
 * `<name>-reverse` migration, as the forward stream reconciler records its own.
 */
export function reconcilerStreamCheckReverse(loaded: LoadedSpec, deps: { logger: Logger }): OpenReverseStreamChecker {
  const spec = reverseSpec(loaded.spec);
  const app = `parity-reverse-stream-check ${loaded.spec.name}`;
  return async () => {
    const sessions: pg.Client[] = [];
    const close = async (): Promise<void> => {
      await Promise.all(sessions.map((c) => c.end().catch(() => undefined)));
    };
    try {
      const source = await openReadSession(connectPg, spec.source.database, postgresDialect, app);
      sessions.push(source);
      const target = await openReadSession(connectPg, targetDatabase(spec), postgresDialect, app);
      sessions.push(target);
      const control = await openWriteSession(connectPg, controlDatabase(spec), postgresDialect, app);
      sessions.push(control);
      await ensureReconcilerTables(control, spec.control.schema);
      const projection = await buildProjection(spec, source, target, postgresDialect);
      const ctx = {
        source,
        target,
        projection,
        // The applied key is read on both sides: the event's own values predate the apply.
        sameTable: false,
        retryWindowMs: spec.reconcile.retryWindowMs,
        pollMs: 200,
        sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, ms)),
        now: () => performance.now(),
      };
      return {
        async check(keys) {
          // Keys only: the current new row is the state checked (`expected` null), or its absence after a delete.
          const batch: ChangeToCheck[] = keys.map((k) => ({ key: k.values, state: k.deleted ? null : {}, expected: null, inEvent: null }));
          const verdicts = await checkChanges(ctx, batch);
          const out: StreamCheckResult[] = [];
          for (const [p, v] of verdicts) {
            if (v.verdict === 'mismatch') {
              const columns = projection.columns;
              const asObject = (values: Array<string | null> | undefined) =>
                values ? Object.fromEntries(columns.map((c, i) => [c, values[i] ?? null])) : null;
              await control.query(
                `INSERT INTO ${tables(spec.control.schema).stream} (migration, key, position, expected, actual, reason) VALUES ($1, $2, $3, $4, $5, $6)`,
                [
                  spec.name,
                  JSON.stringify(p.key),
                  v.targetPosition,
                  JSON.stringify(asObject(v.source?.values)),
                  JSON.stringify(asObject(v.target?.values)),
                  v.reason ?? 'mismatch',
                ],
              );
              deps.logger.debug({ key: p.key, reason: v.reason }, 'reverse stream check: mismatch recorded');
            }
            out.push({
              key: p.key,
              verdict: v.verdict === 'dead-letter' ? 'skipped' : v.verdict,
              ...(v.reason ? { reason: v.reason } : {}),
            });
          }
          return out;
        },
        close,
      };
    } catch (err) {
      await close();
      throw err;
    }
  };
}
