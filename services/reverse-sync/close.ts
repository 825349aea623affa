/**
 * The contract step's end of the window: the closer the CLI wiring hands the coordinator, which runs
 * it in the contract DDL's own fenced transaction. Closing takes a new reverse fencing token there,
 * so reverse sync's next batch is refused and it stops.
 *
 * Cross-database: the window lives in the source database, which cannot share the target DDL's
 * transaction; it closes after the steps, in a transaction of its own on the source database, still
 * under the contract's lease (the coordinator runs this stage inside its fenced transaction).
 */
import { createPgClient } from '../core/clients.js';
import type { LoadedSpec } from '../core/spec.js';
import type { ReverseWindowCloser } from '../coordinator/coordinator.js';
import { reverseScope } from './names.js';
import { closeWindow } from './window-store.js';

export function reverseWindowCloser(loaded: LoadedSpec): ReverseWindowCloser {
  const { spec } = loaded;
  return async (db, actor, stage) => {
    if (spec.target.kind !== 'other-database') {
      await closeWindow(db, spec.control.schema, spec.name, reverseScope(spec), actor);
      return;
    }
    if (stage !== 'after-steps') return;
    const source = createPgClient(spec.source.database, { applicationName: 'parity-contract' });
    await source.connect();
    try {
      await source.query('BEGIN');
      await closeWindow(source, spec.control.schema, spec.name, reverseScope(spec), actor);
      await source.query('COMMIT');
    } catch (err) {
      await source.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      await source.end().catch(() => undefined);
    }
  };
}
