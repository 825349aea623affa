/**
 * `--json` on the reporting commands that printed text only (issue 19): `spec validate` (ok and
 * rejected, same exit codes), `backfill ctl` (real PostgreSQL: a running backfill applies it),
 * `cdc drop-slot` (a slot that does not exist) and `stack env` (the export lines' settings), each
 * one JSON object on stdout. (`stack down --json` is not run here: it would stop the shared stack.)
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackfill } from '../../../services/backfill/backfill.js';
import { createTestDatabase, type TestDatabase } from '../../support/stack.js';
import { cli, createOrders, makeSpec, ROOT } from '../backfill/fixtures.js';

// Paced at a fixed 5 % duty cycle, so the run is still going while ctl talks to it.
const SLOW =
  '  batchSize: 100\n  minBatchSize: 100\n  maxBatchSize: 1000\n  throttle:\n    pace:\n      mode: duty-cycle\n      dutyCycle: 0.05\n      minDutyCycle: 0.05\n      maxDutyCycle: 0.05\n      latencyGuard: { enabled: false }';

async function json(args: string[]): Promise<{ code: number | null; out: unknown; stderr: string }> {
  const run = cli(args);
  const { code } = await run.exit;
  const lines = run.stdout().trim().split('\n');
  expect(lines, `${run.stdout()}${run.stderr()}`).toHaveLength(1);
  expect(lines[0], run.stderr()).not.toBe('');
  return { code, out: JSON.parse(lines[0]!), stderr: run.stderr() };
}

describe('--json on reporting commands', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase('source', 'jsonout');
    await createOrders(db.url, { rows: 20_000 });
  });

  afterAll(async () => {
    await db?.drop();
  });

  it('spec validate --json: {ok, file, offline, name}, or the problems with exit 2', async () => {
    const example = join(ROOT, 'schemas/examples/orders-multicurrency.yaml');
    const ok = await json(['spec', 'validate', '--offline', '--json', example]);
    expect(ok.code).toBe(0);
    expect(ok.out).toEqual({ ok: true, file: example, offline: true, name: expect.any(String) });

    const bad = join(mkdtempSync(join(tmpdir(), 'parity-json-')), 'bad.yaml');
    writeFileSync(bad, 'apiVersion: parity/v1\nname: Not A Slug\n');
    const rejected = await json(['spec', 'validate', '--offline', '--json', bad]);
    expect(rejected.code).toBe(2);
    const r = rejected.out as { ok: boolean; code: string; problems: { path: string; message: string }[] };
    expect(r).toMatchObject({ ok: false, file: bad, offline: true, code: 'PARITY_SPEC_INVALID' });
    expect(r.problems.length).toBeGreaterThan(1);
    expect(r.problems.map((p) => p.path)).toContain('name');
    for (const p of r.problems) expect(typeof p.message).toBe('string');

    const missing = await json(['spec', 'validate', '--json', join(tmpdir(), 'no-such-parity-spec.yaml')]);
    expect(missing.code).toBe(2);
    expect(missing.out).toMatchObject({
      ok: false,
      code: 'PARITY_BAD_INPUT',
      problems: [{ message: expect.stringContaining('cannot read spec file') }],
    });
  });

  it('backfill ctl --json: the command, its sequence and how many live processes applied it', async () => {
    const { spec, file } = makeSpec({ name: 'json-ctl', sourceUrl: db.url, backfill: SLOW });
    const stop = new AbortController();
    let joined!: () => void;
    const started = new Promise<void>((resolve) => (joined = resolve));
    const running = runBackfill({ spec, workers: 1, pollMs: 100, controlServer: false, signal: stop.signal, onFence: () => joined() });
    running.catch(() => undefined);
    try {
      await started;
      const r = await json(['backfill', 'ctl', '--spec', file, '--json', 'set', 'batch-size=300']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.out).toEqual({
        command: 'set batch-size=300',
        runId: expect.any(Number),
        seq: expect.any(Number),
        liveProcesses: 1,
        applied: 1,
        complete: true,
      });
    } finally {
      stop.abort();
      await running.catch(() => undefined);
    }
  });

  it('cdc drop-slot --json: what was dropped', async () => {
    const { file } = makeSpec({ name: 'json-drop', sourceUrl: db.url });
    const r = await json(['cdc', 'drop-slot', '--spec', file, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.out).toEqual({ slot: 'json_drop_slot', slotDropped: false, publication: 'json_drop_pub', publicationDropped: false });
  });

  it('stack env --json: the same settings as the export lines', async () => {
    const lines = cli(['stack', 'env']);
    await lines.exit;
    const exported = Object.fromEntries(
      lines
        .stdout()
        .trim()
        .split('\n')
        .map((l) => /^export ([A-Z_]+)=(.*)$/.exec(l)!)
        .map((m) => [m[1], m[2]!.replace(/^'(.*)'$/, '$1')]),
    );
    const run = cli(['stack', 'env', '--json']);
    expect((await run.exit).code).toBe(0);
    const settings = JSON.parse(run.stdout()) as Record<string, string>;
    expect(settings).toEqual(exported);
    expect(settings.PARITY_KAFKA_BROKERS).toBeTruthy();
  });
});
