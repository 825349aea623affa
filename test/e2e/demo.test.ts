import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { expect, test } from 'vitest';
import { STACK } from '../support/stack.js';
import { screenshotPath } from '../support/browser.js';

interface DemoFigures {
  ok: boolean;
  failures: string[];
  reportPath: string;
  figures: {
    firstVerify: { confirmedDrift: number };
    finalVerify: { confirmedDrift: number; inFlight: number };
    events: { events: number; rowsInDatabase: number; mismatched: number; resurrected: number };
    cacheInspect: { sampled: number; stale: number };
    darkReads: { reads: number; mismatches: number; matches: number };
    load: { inserts: number; updates: number; deletes: number; buggyWrites: number; oldWriterWrites: number };
  };
}

test('parity demo --quick walks every phase and ends exact: no drift, no lost event, caches fresh', async () => {
  const { code, stdout } = await new Promise<{ code: number; stdout: string }>((resolve) => {
    const child = spawn(process.execPath, ['services/cli/bin/parity.js', 'demo', '--quick', '--json'], { env: { ...process.env, ...STACK }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c) => (out += String(c)));
    child.on('exit', (c) => resolve({ code: c ?? 1, stdout: out }));
  });
  writeFileSync(screenshotPath('demo-quick.log'), stdout);
  const result = JSON.parse(stdout.trim().split('\n').pop()!) as DemoFigures;
  expect(result.failures).toEqual([]);
  expect(code).toBe(0);
  const f = result.figures;
  // The traffic really ran, with the old-version writer and the dual-write bug injecting drift...
  expect(f.load.inserts + f.load.updates).toBeGreaterThan(1000);
  expect(f.load.buggyWrites + f.load.oldWriterWrites).toBeGreaterThan(0);
  // ...which verification found before repair, and which is gone at the end.
  expect(f.firstVerify.confirmedDrift).toBeGreaterThan(0);
  expect(f.finalVerify.confirmedDrift).toBe(0);
  expect(f.finalVerify.inFlight).toBe(0);
  // Every row's newest event equals the row; no deleted row comes back.
  expect(f.events.mismatched).toBe(0);
  expect(f.events.resurrected).toBe(0);
  expect(f.events.events).toBeGreaterThanOrEqual(f.events.rowsInDatabase);
  // Caches were filled and none is stale.
  expect(f.cacheInspect.sampled).toBeGreaterThan(0);
  expect(f.cacheInspect.stale).toBe(0);
  expect(f.darkReads.matches).toBeGreaterThan(0);
  expect(f.darkReads.mismatches).toBe(0);
}, 900_000);
