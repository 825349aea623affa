/**
 * Phases against real PostgreSQL (control schema, evidence) and Redis (flags): a gate that fails
 * refuses the advance and says why; every transition is audited; rollbacks change routing only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';
import { Redis } from 'ioredis';
import { createCoordinator, type Coordinator } from '../../../services/coordinator/coordinator.js';
import { readAudit } from '../../../services/coordinator/phase-store.js';
import { parseFlagAssignments } from '../../../services/coordinator/flag-model.js';
import { recordEvidence, type Evidence } from '../../../services/core/control.js';
import type { ParityError } from '../../../services/core/errors.js';
import type { LoadedSpec, Spec } from '../../../services/core/spec.js';
import { STACK, createTestDatabase, uniqueName, type TestDatabase } from '../../support/stack.js';
import { writeSpec } from './spec-fixture.js';
import { reconcilerContractGate } from '../../../services/cli/contract-gate.js';
import { PHASES } from '../../../services/coordinator/phases.js';
import { transition } from '../../../services/coordinator/phase-store.js';
import { prefixTracker } from './redis-keys.js';

const run = promisify(execFile);
const ROOT = new URL('../../../', import.meta.url).pathname;

let db: TestDatabase;
let pool: pg.Pool;
let redis: Redis;
const keys = prefixTracker('ph');

beforeAll(async () => {
  db = await createTestDatabase('source', 'phases');
  pool = new pg.Pool({ connectionString: db.url, max: 6 });
  await pool.query('CREATE TABLE orders (id bigint PRIMARY KEY, total_amount integer NOT NULL)');
  await pool.query('INSERT INTO orders SELECT g, g * 100 FROM generate_series(1, 200) g');
  redis = new Redis(STACK.PARITY_REDIS_URL);
  // A restart of the shared Redis by another suite shows as retries, not as unhandled events.
  redis.on('error', () => undefined);
});

afterAll(async () => {
  if (redis) await keys.cleanup(redis);
  redis?.disconnect();
  await pool?.end();
  await db?.drop();
});

const DDL = {
  expand: [{ name: 'add currency', sql: 'ALTER TABLE public.orders ADD COLUMN IF NOT EXISTS currency text' }],
  enforce: [
    { name: 'currency check', sql: 'ALTER TABLE public.orders ADD CONSTRAINT orders_currency_nn CHECK (currency IS NOT NULL)' },
    { name: 'currency not null', sql: 'ALTER TABLE public.orders ALTER COLUMN currency SET NOT NULL' },
  ],
  contract: [{ name: 'drop total_amount', sql: 'ALTER TABLE public.orders DROP COLUMN total_amount' }],
};

/** A coordinator as the CLI wires it: the reconciler's contract gate injected. */
function coordinatorFor(loaded: LoadedSpec): Coordinator {
  const { spec } = loaded;
  keys.track(`parity:{${spec.name}}*`);
  return createCoordinator({ spec, control: pool, target: pool, redis, contractGate: reconcilerContractGate(loaded, { source: pool }) });
}

/**
 * A logical slot for the spec, kept at the end of the WAL (what a caught-up CDC connector does), so
 * the contract gate's live CDC-lag criterion can pass. Dropped by the returned function.
 */
async function caughtUpSlot(spec: Spec): Promise<() => Promise<void>> {
  await pool.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [spec.cdc.slot]);
  let advancing = Promise.resolve();
  const timer = setInterval(() => {
    advancing = advancing.then(() =>
      pool.query(`SELECT pg_replication_slot_advance($1, pg_current_wal_lsn())`, [spec.cdc.slot]).then(
        () => undefined,
        () => undefined,
      ),
    );
  }, 50);
  return async () => {
    clearInterval(timer);
    await advancing;
    await pool.query(`SELECT pg_drop_replication_slot($1)`, [spec.cdc.slot]);
  };
}

async function refusal(promise: Promise<unknown>): Promise<ParityError> {
  try {
    await promise;
  } catch (err) {
    return err as ParityError;
  }
  throw new Error('expected a refusal');
}

const evidence = (spec: Spec, e: Omit<Evidence, 'migration'>) => recordEvidence(pool, spec.control.schema, { migration: spec.name, ...e });
const set = async (c: Coordinator, ...values: string[]) =>
  c.setFlags({ values: parseFlagAssignments(values), actor: 'alice', reason: 'test' });
const advance = (c: Coordinator, cohort?: string) => c.advance({ actor: 'alice', reason: 'gate passed', ...(cohort ? { cohort } : {}) });

describe('migration phases', () => {
  it('moves forward only through passing gates, audits every transition, and rolls back routing only', async () => {
    const loaded = writeSpec({ name: uniqueName('ph').replace(/_/g, '-'), databaseUrl: db.url, ddl: DDL });
    const { spec } = loaded;
    const c = coordinatorFor(loaded);

    const first = await c.status();
    expect(first.phase).toBe('expand');
    expect(first.cohorts[0]?.gate).toMatchObject({ from: 'expand', to: 'dual-write', passed: false });

    let err = await refusal(advance(c));
    expect(err.code).toBe('PARITY_GATE_FAILED');
    expect(err.message).toContain('cannot leave expand for dual-write');
    expect(err.message).toContain('FAIL expand DDL applied: 0/1 steps applied; missing: add currency (run parity expand)');

    // Routing ahead of the phase is refused, unless forced (and the audit says so).
    err = await refusal(set(c, 'dual-write=on'));
    expect(err.code).toBe('PARITY_PHASE');
    expect(err.message).toContain('dual-write=on needs phase dual-write');
    await c.setFlags({ values: [['dual-write', 'on']], actor: 'bob', reason: 'incident drill', force: true });
    await set(c, 'dual-write=off');
    const flagAudit = await c.flags.audit(5);
    expect(flagAudit.map((a) => [a.flag, a.old, a.new, a.actor])).toEqual([
      ['dual-write', 'on', 'off', 'alice'],
      ['dual-write', '', 'on', 'bob'],
    ]);
    expect(flagAudit[1]?.reason).toBe('[forced past phase] incident drill');

    await c.runPhaseDdl({ phase: 'expand', actor: 'alice' });
    expect((await advance(c)).to).toBe('dual-write');

    err = await refusal(advance(c));
    expect(err.message).toContain('FAIL dual writes on: dual-write=off');
    await set(c, 'dual-write=on');
    expect((await advance(c)).to).toBe('backfill');

    err = await refusal(advance(c));
    expect(err.message).toContain('no backfill evidence recorded');
    await evidence(spec, { kind: 'backfill', passed: true, summary: '120/200 rows copied', value: { complete: false, rows: 120 } });
    err = await refusal(advance(c));
    expect(err.message).toContain('FAIL backfill complete: not complete');
    expect(err.message).toContain('120/200 rows copied');
    // What the backfill does, in one statement here.
    await pool.query(`UPDATE orders SET currency = 'USD'`);
    await evidence(spec, { kind: 'backfill', passed: true, summary: '200/200 rows copied', value: { complete: true, rows: 200 } });
    expect((await advance(c)).to).toBe('verify');

    await evidence(spec, { kind: 'verify', passed: false, summary: '3 rows differ', value: { confirmedDrift: 3, inFlight: 0 } });
    err = await refusal(advance(c));
    expect(err.message).toContain('FAIL verification passed: 3 rows differ');
    await evidence(spec, { kind: 'verify', passed: true, summary: '0 rows differ', value: { confirmedDrift: 0, inFlight: 0 } });
    expect((await advance(c)).to).toBe('dark-reads');

    await set(c, 'read=dark', 'read-percent=10');
    expect((await advance(c)).to).toBe('ramp');
    err = await refusal(set(c, 'read=new', 'read-percent=150'));
    expect(err.code).toBe('PARITY_BAD_INPUT');
    await set(c, 'read=new', 'read-percent=50');
    err = await refusal(advance(c));
    expect(err.message).toContain('FAIL reads on the new path at 100%: read=new at 50%');

    // Rolling back from ramp to dark-reads puts reads back on the dark path; no data changes.
    const back = await c.rollback({ actor: 'carol', reason: 'p99 regression on the new path' });
    expect(back).toMatchObject({ from: 'ramp', to: 'dark-reads' });
    expect(back.flagsChanged).toEqual([{ name: 'read', old: 'new', new: 'dark' }]);
    expect((await c.flags.read()).flags).toMatchObject({ read: 'dark', readPercent: 50, dualWrite: true });
    expect((await advance(c)).to).toBe('ramp');
    await set(c, 'read=new', 'read-percent=100');
    expect((await advance(c)).to).toBe('enforce');

    err = await refusal(advance(c));
    expect(err.message).toContain('FAIL enforce DDL applied');
    expect(err.message).toContain('FAIL CDC lag: measured no slot');
    expect(err.message).toContain('FAIL schemas compatible');
    await c.runPhaseDdl({ phase: 'enforce', actor: 'alice' });
    const dropSlot = await caughtUpSlot(spec);
    try {
      await evidence(spec, { kind: 'compat', passed: true, summary: 'all subjects BACKWARD compatible', value: {} });
      const last = await advance(c);
      expect(last.to).toBe('contract');
      expect(last.checks.every((check) => check.passed)).toBe(true);

      // The contract DDL needs confirmation; refused, nothing is dropped.
      err = await refusal(c.runPhaseDdl({ phase: 'contract', actor: 'alice', confirm: async () => false }));
      expect(err.code).toBe('PARITY_ABORTED');
      const columns = async () =>
        (
          await pool.query(`SELECT column_name FROM information_schema.columns WHERE table_name = 'orders' ORDER BY ordinal_position`)
        ).rows.map((r: { column_name: string }) => r.column_name);
      expect(await columns()).toEqual(['id', 'total_amount', 'currency']);
      // Before the contract DDL ran, contract can still roll back; after, never.
      expect((await c.rollback({ actor: 'alice', reason: 'wait for the finance report' })).to).toBe('enforce');
      expect((await advance(c)).to).toBe('contract');
      const contracted = await c.runPhaseDdl({ phase: 'contract', actor: 'alice', confirm: async () => true });
      expect(contracted.actions.map((a) => a.status)).toEqual(['applied']);
      expect(await columns()).toEqual(['id', 'currency']);
      err = await refusal(c.rollback({ actor: 'alice', reason: 'oops' }));
      expect(err.code).toBe('PARITY_PHASE');
      expect(err.message).toContain('contract DDL already ran (drop total_amount)');

      const audit = await readAudit(pool, spec.control.schema, spec.name, 100);
      const transitions = audit.reverse().map((a) => `${a.action}:${a.fromPhase ?? ''}>${a.toPhase}:${a.actor}`);
      expect(transitions).toEqual([
        'init:>expand:parity',
        'expand:expand>expand:alice',
        'advance:expand>dual-write:alice',
        'advance:dual-write>backfill:alice',
        'advance:backfill>verify:alice',
        'advance:verify>dark-reads:alice',
        'advance:dark-reads>ramp:alice',
        'rollback:ramp>dark-reads:carol',
        'advance:dark-reads>ramp:alice',
        'advance:ramp>enforce:alice',
        'enforce:enforce>enforce:alice',
        'advance:enforce>contract:alice',
        'rollback:contract>enforce:alice',
        'advance:enforce>contract:alice',
        'contract:contract>contract:alice',
      ]);
      const withEvidence = audit.find((a) => a.action === 'advance' && a.fromPhase === 'backfill');
      expect(withEvidence?.reason).toBe('gate passed');
      expect(JSON.stringify(withEvidence?.evidence)).toContain('200/200 rows copied');
    } finally {
      await dropSlot();
    }
  });

  it('rolls out one cohort at a time: each cohort has its phase, flags and rollback', async () => {
    const loaded = writeSpec({
      name: uniqueName('co').replace(/_/g, '-'),
      databaseUrl: db.url,
      table: 'orders',
      cohorts: ['eu', 'us'],
      ddl: { expand: [] },
    });
    const { spec } = loaded;
    const c = coordinatorFor(loaded);
    const err = await refusal(advance(c));
    expect(err.code).toBe('PARITY_BAD_INPUT');
    expect(err.message).toContain('rolls out per cohort (eu, us)');
    expect((await refusal(advance(c, 'asia'))).message).toContain('unknown cohort "asia"');

    expect((await advance(c, 'eu')).to).toBe('dual-write');
    await c.setFlags({ cohort: 'eu', values: [['dual-write', 'on']], actor: 'alice', reason: 'eu first' });
    // A migration-wide flag reaches us too, which is still in expand: refused.
    expect((await refusal(set(c, 'dual-write=on'))).message).toContain('cohort us is in expand');
    expect((await advance(c, 'eu')).to).toBe('backfill');
    await evidence(spec, { kind: 'backfill', cohort: 'eu', passed: true, summary: 'eu rows copied', value: { complete: true } });
    expect((await advance(c, 'eu')).to).toBe('verify');

    const status = await c.status();
    expect(status.phase).toBe('expand');
    expect(status.cohorts.map((s) => [s.cohort, s.phase])).toEqual([
      ['eu', 'verify'],
      ['us', 'expand'],
    ]);
    expect((await c.flags.read('us')).flags.dualWrite).toBe(false);
    // us has no backfill evidence of its own, and the eu evidence does not count for it.
    await advance(c, 'us');
    await c.setFlags({ cohort: 'us', values: [['dual-write', 'on']], actor: 'alice', reason: 'us next' });
    await advance(c, 'us');
    expect((await refusal(advance(c, 'us'))).message).toContain('no backfill evidence recorded');

    // Rolling eu back to expand turns its dual writes off; us keeps its own flags.
    const back = await c.rollback({ cohort: 'eu', actor: 'carol', reason: 'eu incident', to: 'expand' });
    expect(back.flagsChanged).toEqual([{ name: 'dual-write', old: 'on', new: 'off' }]);
    expect((await c.flags.read('eu')).flags.dualWrite).toBe(false);
    expect((await c.flags.read('us')).flags.dualWrite).toBe(true);
    const audit = await c.flags.audit(1);
    expect(audit[0]).toMatchObject({ scope: 'eu', flag: 'dual-write', actor: 'carol', reason: 'rollback to expand: eu incident' });
  });

  it('speaks through the CLI: exit codes, reasons, JSON status, and contract refusing without --yes', async () => {
    const loaded = writeSpec({ name: uniqueName('cli').replace(/_/g, '-'), databaseUrl: db.url, table: 'orders', ddl: DDL });
    const { spec, file } = loaded;
    keys.track(`parity:{${spec.name}}*`);
    const parity = async (...args: string[]) => {
      try {
        const { stdout, stderr } = await run(process.execPath, ['services/cli/bin/parity.js', ...args], {
          cwd: ROOT,
          env: { ...process.env, USER: 'ci-bot' },
        });
        return { code: 0, stdout, stderr };
      } catch (e) {
        const x = e as { code: number; stdout: string; stderr: string };
        return { code: x.code, stdout: x.stdout, stderr: x.stderr };
      }
    };
    const refused = await parity('migrate', 'advance', '--spec', file, '--reason', 'try');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('PARITY_GATE_FAILED');
    expect(refused.stderr).toContain('missing: add currency (run parity expand)');

    expect((await parity('flags', 'set', '--spec', file, 'read=sideways', '--reason', 'x')).code).toBe(2);
    expect((await parity('migrate', 'advance', '--spec', file)).stderr).toContain('missing required option --reason');

    const contract = await parity('contract', '--spec', file);
    expect(contract.code).toBe(1);
    expect(contract.stderr).toContain('PARITY_ABORTED');
    expect(contract.stderr).toContain('--yes');

    const status = await parity('migrate', 'status', '--spec', file, '--json');
    expect(status.code).toBe(0);
    const report = JSON.parse(status.stdout) as {
      phase: string;
      cohorts: { gate: { checks: { name: string; passed: boolean }[] } }[];
      audit: { actor: string; action: string }[];
    };
    expect(report.phase).toBe('expand');
    expect(report.cohorts[0]?.gate.checks).toEqual([expect.objectContaining({ name: 'expand DDL applied', passed: false })]);
    expect(report.audit).toEqual([expect.objectContaining({ action: 'init', actor: 'ci-bot' })]);

    // The CLI judges the contract criteria through the reconciler's gate (wired in services/cli),
    // which measures CDC lag from the replication slot itself and judges the drift window.
    await walkTo(spec, 'enforce');
    const enforce = await parity('migrate', 'status', '--spec', file, '--json');
    expect(enforce.code).toBe(0);
    const checks = (JSON.parse(enforce.stdout) as typeof report).cohorts[0]!.gate.checks as {
      name: string;
      passed: boolean;
      detail: string;
    }[];
    expect(checks.find((check) => check.name === 'CDC lag')).toMatchObject({ passed: false, detail: expect.stringContaining('no slot') });
    expect(checks.map((check) => check.name)).toContain('drift window');
  });
});

/** Moves a migration's phase row straight to `to` (what passing gates would do), audited as 'test'. */
async function walkTo(spec: Spec, to: (typeof PHASES)[number]): Promise<void> {
  await coordinatorFor({ spec } as LoadedSpec).status();
  for (let i = 0; PHASES[i] !== to; i++) {
    await transition(pool, spec.control.schema, {
      migration: spec.name,
      cohort: '',
      action: 'advance',
      fromPhase: PHASES[i]!,
      toPhase: PHASES[i + 1]!,
      actor: 'test',
      reason: 'setup',
      evidence: null,
    });
  }
}

describe('the contract step under the lease', () => {
  const columns = async (table: string) =>
    (
      await pool.query(`SELECT column_name FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position`, [table])
    ).rows.map((r: { column_name: string }) => r.column_name);

  async function contractReady(name: string): Promise<{ loaded: LoadedSpec; table: string; dropSlot: () => Promise<void> }> {
    const table = `orders_${name.replace(/-/g, '_')}`;
    await pool.query(`CREATE TABLE ${table} (id bigint PRIMARY KEY, total_amount integer, currency text)`);
    const loaded = writeSpec({
      name,
      databaseUrl: db.url,
      table,
      ddl: { contract: [{ name: 'drop total_amount', sql: `ALTER TABLE public.${table} DROP COLUMN total_amount` }] },
    });
    const { spec } = loaded;
    await walkTo(spec, 'contract');
    await evidence(spec, { kind: 'backfill', passed: true, summary: 'complete', value: { complete: true, runId: 1 } });
    await evidence(spec, { kind: 'verify', passed: true, summary: '0 rows differ', value: { confirmedDrift: 0, inFlight: 0, runId: 1 } });
    await evidence(spec, { kind: 'compat', passed: true, summary: 'compatible', value: {} });
    return { loaded, table, dropSlot: await caughtUpSlot(spec) };
  }

  it('refuses when drift appears between the gate and the DDL; the old column stays', async () => {
    const { loaded, table, dropSlot } = await contractReady(uniqueName('st').replace(/_/g, '-'));
    const { spec } = loaded;
    try {
      const c = coordinatorFor(loaded);
      // The operator saw a passing gate; while the prompt waited, a verification found drift.
      const err = await refusal(
        c.runPhaseDdl({
          phase: 'contract',
          actor: 'alice',
          confirm: async (_plan, gate) => {
            expect(gate?.every((check) => check.passed)).toBe(true);
            await evidence(spec, {
              kind: 'verify',
              passed: false,
              summary: '2 rows differ',
              value: { confirmedDrift: 2, inFlight: 0, runId: 2 },
            });
            return true;
          },
        }),
      );
      expect(err.code).toBe('PARITY_GATE_FAILED');
      expect(err.message).toContain('changed between its evaluation and the DDL; nothing was dropped');
      expect(err.message).toContain('confirmed drift no longer passes');
      expect(await columns(table)).toEqual(['id', 'total_amount', 'currency']);

      // New evidence that still passes has moved the verdict too: the operator reviews it again.
      await evidence(spec, { kind: 'verify', passed: true, summary: '0 rows differ', value: { confirmedDrift: 0, inFlight: 0, runId: 3 } });
      const moved = await refusal(
        c.runPhaseDdl({
          phase: 'contract',
          actor: 'alice',
          confirm: async () => {
            await evidence(spec, {
              kind: 'verify',
              passed: true,
              summary: '0 rows differ',
              value: { confirmedDrift: 0, inFlight: 0, runId: 4 },
            });
            return true;
          },
        }),
      );
      expect(moved.code).toBe('PARITY_GATE_FAILED');
      expect(moved.message).toMatch(/confirmed drift: its evidence changed \(was verify@\S+ run 3, now verify@\S+ run 4\)/);
      expect(await columns(table)).toEqual(['id', 'total_amount', 'currency']);

      // Nothing moved: the drop runs, and the audit keeps both verdicts.
      const done = await c.runPhaseDdl({ phase: 'contract', actor: 'alice', confirm: async () => true });
      expect(done.actions.map((a) => a.status)).toEqual(['applied']);
      expect(await columns(table)).toEqual(['id', 'currency']);
      const [entry] = await readAudit(pool, spec.control.schema, spec.name, 1);
      expect(entry?.action).toBe('contract');
      expect(entry?.evidence).toMatchObject({ gate: expect.any(Array), recheck: expect.any(Array) });
    } finally {
      await dropSlot();
    }
  });
});
