/**
 * Test helper: keeps this folder's Redis-using test files from running while redis-outage.test.ts has
 * Redis stopped. The local Redis has no persistence, so the outage test's restart wipes every key,
 * including other tests' entries. Each file holds a shared marker while it runs; the outage test
 * announces itself, then waits until no other file holds one. Both sides announce before they look,
 * so at least one of them sees the other. Markers of dead processes are ignored.
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

const DIR = join(tmpdir(), 'parity-cache-versioner-tests');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function markers(kind: 'shared' | 'outage', except?: string): string[] {
  return readdirSync(DIR).filter((name) => {
    if (!name.startsWith(`${kind}-`) || name === except) return false;
    const pid = Number(name.split('-')[1]);
    return alive(pid);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Holds off a Redis outage while this file runs; returns the release function. */
export async function holdRedis(timeoutMs = 120_000): Promise<() => void> {
  mkdirSync(DIR, { recursive: true });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const mine = `shared-${process.pid}-${randomBytes(4).toString('hex')}`;
    writeFileSync(join(DIR, mine), '');
    if (markers('outage').length === 0) return () => rmSync(join(DIR, mine), { force: true });
    rmSync(join(DIR, mine), { force: true });
    if (Date.now() > deadline) throw new Error('a Redis outage test is still running');
    await sleep(200);
  }
}

/** Waits until no other file holds Redis, and keeps new ones out until released. */
export async function takeRedisDown(timeoutMs = 150_000): Promise<() => void> {
  mkdirSync(DIR, { recursive: true });
  const mine = `outage-${process.pid}-${randomBytes(4).toString('hex')}`;
  writeFileSync(join(DIR, mine), '');
  const deadline = Date.now() + timeoutMs;
  while (markers('shared').length > 0) {
    if (Date.now() > deadline) {
      rmSync(join(DIR, mine), { force: true });
      throw new Error('other cache tests kept using Redis');
    }
    await sleep(200);
  }
  return () => rmSync(join(DIR, mine), { force: true });
}
