/**
 * Reports and the contract gate. The report is checked for every figure the sign-off needs and
 * for being self-contained and free of secrets; the gate is driven through its criteria with real
 * evidence rows and a real replication slot (advanced by the test the way a CDC consumer confirms).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordEvidence } from '../../../services/core/control.js';
import { loadSpec } from '../../../services/core/spec.js';
import { evaluateContractGate } from '../../../services/reconciler/contract-gate.js';
import { buildReport } from '../../../services/reconciler/report.js';
import { renderHtml, renderJson, renderMarkdown } from '../../../services/reconciler/report-render.js';
import { createTestDatabase, KAFKA_BROKERS, STACK, uniqueName, type TestDatabase } from '../../support/stack.js';
import { exec, query, verify } from './fixtures.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
let src: TestDatabase;
let tgt: TestDatabase;
let dir: string;

beforeAll(async () => {
  [src, tgt] = await Promise.all([createTestDatabase('source', 'rc_rg_s'), createTestDatabase('target', 'rc_rg_t')]);
  dir = mkdtempSync(join(tmpdir(), 'parity-report-'));
});

afterAll(async () => {
  await Promise.all([src?.drop(), tgt?.drop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/**
 * The password the spec takes through ${PARITY_TEST_PASSWORD}: the stack's own when its clusters ask
 * for one (scram-sha-256 over TCP), else any word; either way it must never be printed.
 */
const TEST_PASSWORD = decodeURIComponent(new URL(STACK.PARITY_SOURCE_URL).password) || 's3cr3t-pw';

function withPassword(url: string, password: string): string {
  // Spliced as text: URL's setter would percent-encode the braces of \${VAR} and the spec would then
  // hand PostgreSQL the literal placeholder as the password.
  return url.replace(/^(postgres(?:ql)?:\/\/[^:@/]+)(?::[^@]*)?@/, `$1:${password}@`);
}

function writeSpec(name: string, doc: Record<string, unknown>): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    stringify({
      apiVersion: 'parity/v1',
      name,
      infra: { kafka: { brokers: KAFKA_BROKERS }, registry: { url: STACK.PARITY_REGISTRY_URL }, redis: { url: STACK.PARITY_REDIS_URL } },
      reconcile: { segmentRows: 300, bisectionThreshold: 20, sampleKeys: 3 },
      ...doc,
    }),
  );
  return file;
}

function cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, 'services/cli/bin/parity.js'), ...args], {
      cwd: ROOT,
      env: { ...process.env, PARITY_LOG_LEVEL: 'warn', PARITY_TEST_PASSWORD: TEST_PASSWORD },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('parity report', () => {
  it('carries every figure, caps samples, renders json/md/html without secrets or external assets', async () => {
    await exec(
      src.url,
      `CREATE TABLE acct (id int PRIMARY KEY, balance numeric(12,2))`,
      `INSERT INTO acct SELECT g, g FROM generate_series(1, 1200) g`,
    );
    await exec(
      tgt.url,
      `CREATE TABLE acct (id int PRIMARY KEY, balance numeric)`,
      `INSERT INTO acct SELECT g, g FROM generate_series(1, 1200) g`,
      `UPDATE acct SET balance = 0 WHERE id IN (3, 600, 1199)`,
      `DELETE FROM acct WHERE id = 700`,
      `INSERT INTO acct VALUES (5000, 1), (5001, 2)`,
    );
    // The password only reaches the spec through ${VAR}: it must never be printed.
    const file = writeSpec('report-acct', {
      source: { database: withPassword(src.url, '${PARITY_TEST_PASSWORD}'), table: 'acct' },
      target: { kind: 'other-database', database: withPassword(tgt.url, '${PARITY_TEST_PASSWORD}'), table: 'acct' },
      key: ['id'],
      mapping: { balance: 'balance' },
      cdc: { slot: 'report_acct', publication: 'report_acct', topicPrefix: 'reportacct' },
    });
    const loaded = loadSpec(file, { ...process.env, PARITY_TEST_PASSWORD: TEST_PASSWORD });
    const run = await verify(loaded);
    expect(run.result.confirmedDrift).toBe(6);

    const control = new pg.Client({ connectionString: tgt.url });
    await control.connect();
    try {
      const report = await buildReport(control, loaded);
      expect(report).toMatchObject({
        migration: 'report-acct',
        configHash: loaded.configHash,
        tool: { name: 'parity' },
        source: {
          rows: 1200,
          exclusive: 1,
          database: expect.stringMatching(new RegExp(`^${new URL(STACK.PARITY_SOURCE_URL).host.replaceAll('.', '\\.')}/rc_rg_s_`)),
        },
        target: { rows: 1201, exclusive: 2 },
        updated: 3,
        unchanged: 1196,
        confirmedDrift: 6,
        inFlight: 0,
        verdict: { passed: false, text: 'fail: 6 rows of confirmed drift' },
      });
      expect(report.tool.version).toMatch(/^\d+\.\d+\.\d+/);
      expect(report.source.snapshotPositions.min).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
      expect(report.target.snapshotPositions.max).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
      expect(report.samples.keys).toHaveLength(3);
      expect(report.segments.length).toBeGreaterThan(2);
      expect(report.segments.reduce((a, s) => a + s.source.rows, 0)).toBe(1200);
      expect(report.segments.some((s) => !s.checksumsEqual)).toBe(true);
      expect(report.segments.every((s) => /^-?\d+$/.test(s.source.sum1) && /^-?\d+$/.test(s.target.sum2))).toBe(true);
      expect(report.thresholds).toMatchObject({ contract: { maxConfirmedDrift: 0 }, reconcile: { sampleKeys: 3 } });
      expect(report.history.at(-1)).toMatchObject({ runId: run.result.runId, confirmedDrift: 6 });

      const json = renderJson(report);
      const md = renderMarkdown(report);
      const html = renderHtml(report);
      for (const text of [json, md, html]) {
        expect(text).not.toContain(TEST_PASSWORD);
        expect(text).toContain(loaded.configHash);
      }
      expect(JSON.parse(json).confirmedDrift).toBe(6);
      expect(md).toContain('**Verdict: FAIL**');
      expect(md).toMatch(/\| 600 \| confirmed \| updated \| balance="600" \| balance="0" \|/);
      expect(html.match(/<svg /g)).toHaveLength(2);
      expect(html).not.toMatch(/<script|<link|\bsrc=|url\(/i);
      expect(html.replace(/xmlns="http:\/\/www\.w3\.org\/2000\/svg"/g, '')).not.toMatch(/https?:\/\//);
    } finally {
      await control.end();
    }

    const out = join(dir, 'report.html');
    const viaCli = await cli('report', '--spec', file, '--format', 'html', '--out', out);
    expect(viaCli.code).toBe(0);
    expect(readFileSync(out, 'utf8')).toContain('Drift over the key range');
    const badFormat = await cli('report', '--spec', file, '--format', 'pdf');
    expect(badFormat.code).toBe(2);
    expect(badFormat.stderr).toContain('--format must be one of json, md, html');
  });
});

describe('parity gate contract', () => {
  it('fails on each missing or failing criterion with its reason, passes when all hold', async () => {
    await exec(src.url, `CREATE TABLE gated (id int PRIMARY KEY, v int)`, `INSERT INTO gated SELECT g, g FROM generate_series(1, 500) g`);
    await exec(tgt.url, `CREATE TABLE gated (id int PRIMARY KEY, v int)`, `INSERT INTO gated SELECT g, g FROM generate_series(1, 500) g`);
    const slot = uniqueName('gate_slot');
    const base = {
      source: { database: src.url, table: 'gated' },
      target: { kind: 'other-database', database: tgt.url, table: 'gated' },
      key: ['id'],
      mapping: { v: 'v' },
      cdc: { slot, publication: slot, topicPrefix: 'gated' },
      cache: { keys: { v1: 'gated:v1:{id}' }, populate: ['v1'], read: 'v1' },
      gates: { contract: { driftWindowMinutes: 0, maxCdcLagSeconds: 2 } },
    };
    const file = writeSpec('gate-orders', base);
    const loaded = loadSpec(file);
    const control = new pg.Client({ connectionString: tgt.url });
    const source = new pg.Client({ connectionString: src.url });
    await Promise.all([control.connect(), source.connect()]);
    let advancing: NodeJS.Timeout | undefined;
    try {
      const empty = await evaluateContractGate(loaded, { control, source });
      expect(empty.passed).toBe(false);
      const byName = Object.fromEntries(empty.criteria.map((c) => [c.name, c]));
      expect(byName['backfill complete']).toMatchObject({ passed: false, reason: 'no evidence recorded; run parity backfill run' });
      expect(byName['confirmed drift']).toMatchObject({ passed: false, reason: 'no evidence recorded; run parity verify' });
      expect(byName['schemas compatible']).toMatchObject({ passed: false, reason: 'no evidence recorded; run parity compat gate' });
      expect(byName['stale cache entries']).toMatchObject({ passed: false, reason: 'no evidence recorded; run parity cache inspect' });
      expect(byName['CDC lag']).toMatchObject({ passed: false, measured: 'no slot' });

      // Evidence from the other commands, a clean verification, and a slot kept caught up.
      await recordEvidence(control, 'parity', {
        migration: 'gate-orders',
        kind: 'backfill',
        passed: true,
        summary: 'backfill done',
        value: { complete: true },
      });
      await recordEvidence(control, 'parity', { migration: 'gate-orders', kind: 'compat', passed: true, summary: 'compatible', value: {} });
      await recordEvidence(control, 'parity', {
        migration: 'gate-orders',
        kind: 'cache-inspect',
        passed: true,
        summary: '0 stale',
        value: { stale: 0 },
      });
      expect((await verify(loaded)).result.passed).toBe(true);
      await query(src.url, `SELECT pg_create_logical_replication_slot($1, 'test_decoding')`, [slot]);
      const advancer = new pg.Client({ connectionString: src.url });
      await advancer.connect();
      advancing = setInterval(() => {
        void advancer.query(`SELECT pg_replication_slot_advance($1, pg_current_wal_lsn())`, [slot]).catch(() => undefined);
      }, 100);
      const passing = await cli('gate', 'contract', '--spec', file);
      expect(passing.stdout).toMatch(/PASS\s+CDC lag\s+required <= 2 s; measured \d+\.\d+ s/);
      expect(passing.stdout).toContain('contract gate for gate-orders: PASS (contract may proceed)');
      expect(passing.code).toBe(0);

      // A stale cache inspection fails the gate; so does a verification with drift.
      await recordEvidence(control, 'parity', {
        migration: 'gate-orders',
        kind: 'cache-inspect',
        passed: false,
        summary: '4 stale entries',
        value: { stale: 4 },
      });
      await exec(tgt.url, `UPDATE gated SET v = 0 WHERE id = 9`);
      expect((await verify(loaded)).result.confirmedDrift).toBe(1);
      const failing = await cli('gate', 'contract', '--spec', file, '--json');
      expect(failing.code).toBe(1);
      const result = JSON.parse(failing.stdout) as {
        passed: boolean;
        criteria: Array<{ name: string; passed: boolean; measured: string }>;
      };
      expect(result.criteria.filter((c) => !c.passed).map((c) => c.name)).toEqual(['confirmed drift', 'stale cache entries']);
      clearInterval(advancing);
      advancing = undefined;
      await advancer.end();

      // With a drift window, the earlier clean run does not excuse the drift found inside it.
      const windowed = writeSpec('gate-orders', { ...base, gates: { contract: { driftWindowMinutes: 30, maxCdcLagSeconds: 2 } } });
      const w = await evaluateContractGate(loadSpec(windowed), { control, source });
      expect(w.criteria.find((c) => c.name === 'drift window')).toMatchObject({ passed: false, measured: '2 verifications, worst 1 rows' });
      // Verification evidence from another version of the spec does not count.
      expect(w.criteria.find((c) => c.name === 'confirmed drift')?.reason).toMatch(/another spec/);
    } finally {
      if (advancing) clearInterval(advancing);
      await Promise.all([control.end(), source.end()]);
    }
  });
});
