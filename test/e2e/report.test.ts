import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, expect, test } from 'vitest';
import pg from 'pg';
import { launchBrowser, screenshotPath } from '../support/browser.js';
import { writeTestSpec, type TestSpec } from '../support/spec.js';
import { STACK, createTestDatabase, uniqueName, type TestDatabase } from '../support/stack.js';

let db: TestDatabase;
let spec: TestSpec;

function parity(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['services/cli/bin/parity.js', ...args], {
      env: { ...process.env, ...STACK },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += String(c)));
    child.stderr.on('data', (c) => (stderr += String(c)));
    child.on('exit', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

beforeAll(async () => {
  db = await createTestDatabase('source', 'report');
  spec = writeTestSpec({
    'source.database': db.url,
    name: uniqueName('report').replace('_', '-'),
    'cdc.slot': uniqueName('slot'),
    'reconcile.segmentRows': 2000,
    'reconcile.bisectionThreshold': 200,
  });
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    await client.query(
      `CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int, status text, total_amount int NOT NULL, total_amount_minor bigint, currency text)`,
    );
    await client.query(`INSERT INTO orders SELECT g, g % 100, 'paid', 100 + g, 100 + g, 'USD' FROM generate_series(1, 10000) g`);
    // Drift in two places of the key range: a wrong minor amount and a missing currency.
    await client.query(`UPDATE orders SET total_amount_minor = total_amount_minor + 1 WHERE id IN (1500, 1501, 1502)`);
    await client.query(`UPDATE orders SET currency = NULL WHERE id BETWEEN 8000 AND 8009`);
  } finally {
    await client.end();
  }
});

afterAll(async () => {
  await db?.drop();
});

test('the HTML report shows the verdict and renders its drift charts in headless Chromium', async () => {
  const verify = await parity(['verify', '--spec', spec.path, '--json', '--recheck-wait-ms', '0']);
  expect(verify.code, verify.stderr).toBe(1);
  expect(JSON.parse(verify.stdout).confirmedDrift).toBe(13);
  const out = join(mkdtempSync(join(tmpdir(), 'parity-report-')), 'report.html');
  const report = await parity(['report', '--spec', spec.path, '--format', 'html', '--out', out]);
  expect(report.code, report.stderr).toBe(0);
  const html = readFileSync(out, 'utf8');
  expect(html).not.toMatch(/<(script|link)[^>]+(src|href)=/i); // self-contained: no external assets

  const browser = await launchBrowser();
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 1000 } });
    await page.goto(pathToFileURL(out).href);
    expect(await page.locator('p.fail b').textContent()).toContain('Verdict: FAIL');
    const charts = page.locator('svg');
    expect(await charts.count()).toBeGreaterThanOrEqual(2);
    for (let i = 0; i < 2; i++) {
      const box = await charts.nth(i).boundingBox();
      expect(box?.width ?? 0).toBeGreaterThan(100);
      expect(box?.height ?? 0).toBeGreaterThan(50);
      // Something is drawn in each chart, not only its frame.
      expect(await charts.nth(i).locator('rect, path, polyline, circle, line').count()).toBeGreaterThan(2);
    }
    expect(await page.locator('text=confirmed drift (rows)').count()).toBeGreaterThan(0);
    await page.screenshot({ path: screenshotPath('report.png'), fullPage: true });
  } finally {
    await browser.close();
  }
});
