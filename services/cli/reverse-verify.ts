/**
 * The wiring of reverse verification: the reconciler's segment verification run with the sides
 * swapped (the new representation as the source, the old one as the target) and the reverse mapping
 * as the mapping, under its own migration name so its runs and evidence never mix with the forward
 * ones, and with the reverse slot as the position rows in flight are rechecked against. It lives in the
 * CLI layer, the only one that depends on both services, so reverse sync never imports the reconciler.
 */
import type { Logger } from '../core/log.js';
import type { Registry } from '../core/metrics.js';
import { type LoadedSpec, type Spec, controlDatabase, specHash, targetDatabase } from '../core/spec.js';
import { DEFAULT_VERIFY_OPTIONS, runVerify } from '../reconciler/verify.js';
import { reverseSlot, reverseVerifyName, windowTables } from '../reverse-sync/names.js';
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
