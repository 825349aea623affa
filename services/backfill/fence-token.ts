/**
 * The backfill's own fencing token, for when no `--fence-token` is given. Tokens live in the
 * coordinator's fence table (`<control schema>.fences`, core/fence.ts) of the database the batches
 * write, scope `spec.name`, the scope the coordinator's lock and the repairs fence on.
 *
 * The token belongs to the run, not to the process: every process working run N shares the token
 * held by "parity backfill run N", so processes started together do not fence each other out. A
 * process takes a new token (fencing out every earlier holder: an older run's processes, a repair, a
 * DDL step) whenever the latest token is not its run's. Taking or sharing is one upsert, so two
 * processes starting together agree on one token.
 */
import type pg from 'pg';
import { ensureFenceTable, fenceTable } from '../core/fence.js';

type Queryable = Pick<pg.ClientBase, 'query'>;

export interface RunFence {
  scope: string;
  token: bigint;
  /** issued: this process took a new token for the run; joined: it shares the run's current one. */
  source: 'issued' | 'joined';
  holder: string;
}

/** The holder name a run's token is issued to (shown in the fence table). */
export function runHolder(runId: number): string {
  return `parity backfill run ${runId}`;
}

/** The run's token: the latest one when it is already the run's, else a new one issued to the run. */
export async function takeRunToken(db: Queryable, schema: string, scope: string, runId: number): Promise<RunFence> {
  await ensureFenceTable(db, schema);
  const holder = runHolder(runId);
  // issued_at = now() marks a token issued by this statement (a shared one keeps its older time).
  const { rows } = await db.query(
    `INSERT INTO ${fenceTable(schema)} AS f (scope, token, holder, issued_at) VALUES ($1, 1, $2, now())
     ON CONFLICT (scope) DO UPDATE
       SET token = CASE WHEN f.holder = EXCLUDED.holder THEN f.token ELSE f.token + 1 END,
           issued_at = CASE WHEN f.holder = EXCLUDED.holder THEN f.issued_at ELSE now() END,
           holder = EXCLUDED.holder
     RETURNING token, issued_at = now() AS issued`,
    [scope, holder],
  );
  const row = rows[0] as { token: string; issued: boolean };
  return { scope, token: BigInt(row.token), source: row.issued ? 'issued' : 'joined', holder };
}
