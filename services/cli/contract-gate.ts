/**
 * The wiring of the one contract gate: the reconciler's `parity gate contract` verdict
 * (services/reconciler/contract-gate.ts) handed to the coordinator as its ContractGate. It lives in
 * the CLI layer, the only one that depends on both services, so the coordinator never imports the
 * reconciler.
 */
import type pg from 'pg';
import type { LoadedSpec } from '../core/spec.js';
import type { ContractGate } from '../coordinator/gates.js';
import { evaluateContractGate } from '../reconciler/contract-gate.js';

/** The reconciler's contract gate over `source` (the replication slot whose lag it measures). */
export function reconcilerContractGate(loaded: LoadedSpec, clients: { source: Pick<pg.ClientBase, 'query'> }): ContractGate {
  return async ({ control, now }) => {
    const result = await evaluateContractGate(loaded, { control, source: clients.source, now: () => now });
    return result.criteria.map((c) => ({
      name: c.name,
      passed: c.passed,
      detail: `measured ${c.measured}; required ${c.required}${c.reason ? ` (${c.reason})` : ''}`,
      value: { required: c.required, measured: c.measured },
      ...(c.basis !== undefined ? { basis: c.basis } : {}),
    }));
  };
}
