/**
 * The CLI's output through a pipe (issue 17 item 8): a report of several MB must arrive whole when
 * stdout is a pipe whose reader is slower than the writer (the process used to exit at the first
 * 64 KiB), and a reader that goes away must fail the command instead of a silent exit 0. The report
 * comes from a real verification run in the stack's PostgreSQL, grown by seeding segment rows in the
 * control schema (every segment is one entry of the JSON report).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSpec } from '../../../services/core/spec.js';
import { createTestDatabase, KAFKA_BROKERS, STACK, uniqueName, type TestDatabase } from '../../support/stack.js';
import { exec, verify } from '../reconciler/fixtures.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const BIN = join(ROOT, 'services/cli/bin/parity.js');
/** Segment rows seeded into the run: about 400 bytes of JSON each, so several MB in all. */
const SEEDED_SEGMENTS = 8_000;

let src: TestDatabase;
let tgt: TestDatabase;
let dir: string;
let specFile: string;

interface Piped {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/**
 * Runs the CLI with stdout on a pipe. The reader starts only after `readDelayMs`, so the pipe's
 * buffer is full long before the command finishes: what the process does at its end decides whether
 * the rest arrives. `closeAfterBytes` closes the reading end early (the reader went away).
 */
function runPiped(args: string[], options: { readDelayMs?: number; closeAfterBytes?: number } = {}): Promise<Piped> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: ROOT,
      env: { ...process.env, PARITY_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const chunks: Buffer[] = [];
    let received = 0;
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.pause();
    child.stdout.on('data', (d: Buffer) => {
      chunks.push(d);
      received += d.length;
      if (options.closeAfterBytes !== undefined && received >= options.closeAfterBytes) child.stdout.destroy();
    });
    setTimeout(() => child.stdout.resume(), options.readDelayMs ?? 0);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(chunks), stderr }));
  });
}

/** The report's generation time differs between two runs; everything else must be byte-identical. */
function withoutGeneratedAt(text: string): string {
  return text.replace(/"generatedAt": "[^"]+"/, '"generatedAt": "-"');
}

beforeAll(async () => {
  [src, tgt] = await Promise.all([createTestDatabase('source', 'cli_pipe_s'), createTestDatabase('target', 'cli_pipe_t')]);
  dir = mkdtempSync(join(tmpdir(), 'parity-pipe-'));
  const name = uniqueName('pipe').replace(/_/g, '-');
  await exec(
    src.url,
    'CREATE TABLE acct (id int PRIMARY KEY, balance numeric(12,2))',
    'INSERT INTO acct SELECT g, g FROM generate_series(1, 600) g',
  );
  await exec(
    tgt.url,
    'CREATE TABLE acct (id int PRIMARY KEY, balance numeric)',
    'INSERT INTO acct SELECT g, g FROM generate_series(1, 600) g',
    'UPDATE acct SET balance = 0 WHERE id = 42',
  );
  specFile = join(dir, 'pipe.yaml');
  writeFileSync(
    specFile,
    stringify({
      apiVersion: 'parity/v1',
      name,
      source: { database: src.url, table: 'acct' },
      target: { kind: 'other-database', database: tgt.url, table: 'acct' },
      key: ['id'],
      mapping: { balance: 'balance' },
      infra: { kafka: { brokers: KAFKA_BROKERS }, registry: { url: STACK.PARITY_REGISTRY_URL }, redis: { url: STACK.PARITY_REDIS_URL } },
      cdc: { slot: name.replace(/-/g, '_'), publication: name.replace(/-/g, '_'), topicPrefix: name },
      reconcile: { segmentRows: 300, bisectionThreshold: 20, sampleKeys: 3, settleMs: 300 },
    }),
  );
  const run = await verify(loadSpec(specFile));
  expect(run.result.confirmedDrift).toBe(1);
  // Grow the finished run: copies of its first segment under new numbers.
  await exec(
    tgt.url,
    `INSERT INTO parity.verify_segments (run_id, seg_no, lo, hi, status, source_rows, target_rows, source_sum1, source_sum2, target_sum1, target_sum2,
                                        differing_keys, drift_rows, bisections, fetched_rows, source_position, target_position, worker, duration_ms, finished_at)
     SELECT s.run_id, 100000 + g, to_jsonb(ARRAY[g * 10]), to_jsonb(ARRAY[g * 10 + 10]), 'done', s.source_rows, s.target_rows, s.source_sum1, s.source_sum2,
            s.target_sum1, s.target_sum2, 0, 0, 0, 0, s.source_position, s.target_position, s.worker, s.duration_ms, s.finished_at
       FROM parity.verify_segments s, generate_series(1, ${SEEDED_SEGMENTS}) g
      WHERE s.run_id = ${Number(run.result.runId)} AND s.seg_no = (SELECT min(seg_no) FROM parity.verify_segments WHERE run_id = ${Number(run.result.runId)})`,
  );
});

afterAll(async () => {
  await Promise.all([src?.drop(), tgt?.drop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('parity output through a pipe', () => {
  it('delivers a multi-MB JSON report whole to a slow reader, identical to --out', async () => {
    const out = join(dir, 'report.json');
    const written = await runPiped(['report', '--spec', specFile, '--format', 'json', '--out', out]);
    expect(written.code, written.stderr).toBe(0);
    const file = readFileSync(out, 'utf8');
    expect(file.length).toBeGreaterThan(1_000_000);

    const piped = await runPiped(['report', '--spec', specFile, '--format', 'json'], { readDelayMs: 1_500 });
    expect(piped.code, piped.stderr).toBe(0);
    expect(piped.stdout.length).toBe(Buffer.byteLength(file));
    expect(withoutGeneratedAt(piped.stdout.toString('utf8'))).toBe(withoutGeneratedAt(file));
    const report = JSON.parse(piped.stdout.toString('utf8')) as { segments: unknown[]; confirmedDrift: number };
    expect(report.segments.length).toBeGreaterThan(SEEDED_SEGMENTS);
    expect(report.confirmedDrift).toBe(1);
  });

  it('fails the command (exit 3) when the reader goes away', async () => {
    const cut = await runPiped(['report', '--spec', specFile, '--format', 'json'], { readDelayMs: 500, closeAfterBytes: 1 });
    expect(cut.stdout.length).toBeLessThan(1_000_000);
    expect(cut.code).toBe(3);
    expect(cut.stderr).toContain('cannot write to stdout');
  });
});
