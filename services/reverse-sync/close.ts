/**
 * The contract step's end of the window: the closer the CLI wiring hands the coordinator, which runs
 * it in the contract DDL's own fenced transaction. Closing takes a new reverse fencing token there,
 * so reverse sync's next batch is refused and it stops.
 */
import type { LoadedSpec } from '../core/spec.js';
import type { ReverseWindowCloser } from '../coordinator/coordinator.js';
import { reverseScope } from './names.js';
import { closeWindow } from './window-store.js';

export function reverseWindowCloser(loaded: LoadedSpec): ReverseWindowCloser {
  const { spec } = loaded;
  return async (db, actor) => {
    if (spec.target.kind === 'other-database') return;
    await closeWindow(db, spec.control.schema, spec.name, reverseScope(spec), actor);
  };
}
