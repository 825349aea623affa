/**
 * The first run, as a new user has it: `parity demo --quick` with a brand-new PARITY_STATE_DIR and
 * ports of its own, so the demo starts its own whole stack (a broker that has just started, an empty
 * registry, fresh clusters) next to whatever else runs on the machine. The test stops exactly that
 * stack at the end (`parity stack down` under the same state dir) and deletes its state.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { stackConfig } from '../../services/stack/config.js';
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

/** A port nobody listens on now (the kernel's pick). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function parity(args: string[], env: NodeJS.ProcessEnv, stdout: 'pipe' | 'inherit' = 'pipe'): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['services/cli/bin/parity.js', ...args], { env, stdio: ['ignore', stdout, 'inherit'] });
    let out = '';
    child.stdout?.on('data', (c) => (out += String(c)));
    child.on('exit', (c) => resolve({ code: c ?? 1, stdout: out }));
  });
}

const stateDir = mkdtempSync(join(tmpdir(), 'parity-demo-first-run-'));
let ownEnv: NodeJS.ProcessEnv | undefined;

afterAll(async () => {
  if (!ownEnv) return;
  // Stops what this state dir started (by PID), nothing else; then its data goes.
  const down = await parity(['stack', 'down'], ownEnv, 'inherit');
  if (down.code === 0) {
    rmSync(stackConfig(ownEnv).pgRoot, { recursive: true, force: true });
    rmSync(stateDir, { recursive: true, force: true });
  }
}, 180_000);

test('parity demo --quick, first run on a fresh stack: walks every phase and ends exact (no drift, no lost event, caches fresh)', async () => {
  // The shared stack's settings are not inherited: every stack setting comes from this state dir.
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(
      ([name]) => !name.startsWith('PARITY_') || name === 'PARITY_CACHE_DIR' || name === 'PARITY_PG_BINDIR',
    ),
  );
  const ports = await Promise.all(
    [
      'PARITY_PG_SOURCE_PORT',
      'PARITY_PG_TARGET_PORT',
      'PARITY_KAFKA_PORT',
      'PARITY_KAFKA_CONTROLLER_PORT',
      'PARITY_REGISTRY_PORT',
      'PARITY_REGISTRY_MANAGEMENT_PORT',
      'PARITY_REDIS_PORT',
    ].map(async (name) => [name, String(await freePort())] as const),
  );
  // The demo's own processes (cdc run, cache run, ...) serve their status on any free port, so they
  // never collide with other parity processes on this machine.
  ownEnv = { ...inherited, PARITY_STATE_DIR: stateDir, PARITY_STATUS_PORT: '0', ...Object.fromEntries(ports) };
  const started = performance.now();
  const { code, stdout } = await parity(['demo', '--quick', '--json'], ownEnv);
  const seconds = (performance.now() - started) / 1000;
  process.stderr.write(`first-run demo (own stack started from nothing, then demo --quick): ${seconds.toFixed(0)} s\n`);
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
}, 1_200_000);
