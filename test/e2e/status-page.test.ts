import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, expect, test } from 'vitest';
import pg from 'pg';
import { recordEvidence } from '../../services/core/control.js';
import { launchBrowser, screenshotPath } from '../support/browser.js';
import { writeTestSpec, type TestSpec } from '../support/spec.js';
import { STACK, createTestDatabase, uniqueName, type TestDatabase } from '../support/stack.js';

let db: TestDatabase;
let spec: TestSpec;
let server: ChildProcess | undefined;
let url = '';

beforeAll(async () => {
  db = await createTestDatabase('source', 'status');
  spec = writeTestSpec({ 'source.database': db.url, name: uniqueName('statuspage').replace('_', '-'), 'cdc.slot': uniqueName('slot') });
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    // Three verification runs: drift found, then repaired; a completed backfill.
    for (const [drift, passed] of [
      [12, false],
      [3, false],
      [0, true],
    ] as const) {
      await recordEvidence(client, 'parity', {
        migration: spec.spec.name,
        kind: 'verify',
        passed,
        summary: `${drift} rows of confirmed drift`,
        value: { confirmedDrift: drift, inFlight: 0 },
      });
    }
    await recordEvidence(client, 'parity', {
      migration: spec.spec.name,
      kind: 'backfill',
      passed: true,
      summary: 'backfill complete: 5000 rows',
      value: { complete: true, rows: 5000 },
    });
  } finally {
    await client.end();
  }
  const port = 20_000 + Math.floor(Math.random() * 10_000);
  server = spawn(process.execPath, ['services/cli/bin/parity.js', 'serve', '--spec', spec.path, '--port', String(port)], {
    env: { ...process.env, ...STACK },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  url = await new Promise<string>((resolve, reject) => {
    let out = '';
    server!.stdout!.on('data', (chunk) => {
      out += String(chunk);
      const match = /status page: (\S+)/.exec(out);
      if (match) resolve(match[1]!);
    });
    let err = '';
    server!.stderr!.on('data', (chunk) => (err += String(chunk)));
    server!.on('exit', (code) => reject(new Error(`parity serve exited ${code}: ${err}`)));
  });
});

afterAll(async () => {
  server?.kill('SIGTERM');
  await db?.drop();
});

test('the status page shows the phase, the gates and rendered charts in headless Chromium', async () => {
  const browser = await launchBrowser();
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const response = await page.goto(url);
    expect(response?.status()).toBe(200);
    // Verdict: compat and cache evidence are missing, so the page must say "not ready" and why.
    const verdict = page.locator('#verdict');
    expect(await verdict.getAttribute('data-ok')).toBe('false');
    expect(await verdict.textContent()).toContain('compat: no evidence recorded yet');
    // The migration starts in expand for each cohort of the spec.
    const phases = page.locator('ol.phases');
    expect(await phases.count()).toBe(spec.spec.cohorts.length);
    expect(await phases.first().getAttribute('data-phase')).toBe('expand');
    // Charts rendered: the drift chart has one point per verification run and a drawn line.
    const drift = page.locator('#chart-drift');
    expect(await drift.getAttribute('data-points')).toBe('3');
    const box = await drift.locator('.series').boundingBox();
    expect(box?.width ?? 0).toBeGreaterThan(50);
    expect(await page.locator('#chart-backfill circle').count()).toBe(1);
    expect(await page.locator('tr.gate.pass th').allTextContents()).toEqual(expect.arrayContaining(['backfill', 'verify']));
    await page.screenshot({ path: screenshotPath('status-page.png'), fullPage: true });
    const api = (await (await fetch(`${url}api/status`)).json()) as { latest: { verify: { value: { confirmedDrift: number } } } };
    expect(api.latest.verify.value.confirmedDrift).toBe(0);
  } finally {
    await browser.close();
  }
});
