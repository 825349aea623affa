/**
 * `parity demo`: the playbook's case study, for real, on the local stack. orders.total_amount (int
 * cents) becomes total_amount_minor (bigint) plus currency while checkout, refunds and fraud keep
 * writing — including an old-version writer and a partial dual-write bug — and every phase goes
 * through the coordinator. It exits 0 only if the end state is exact.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createKafka, createRedis, createSchemaRegistry } from '../core/clients.js';
import type { InitialSnapshotStatus } from '../cdc/status.js';
import { waitForProducerId } from './broker-ready.js';
import { ParityError } from '../core/errors.js';
import { loadSpec, type Spec } from '../core/spec.js';
import { sleep } from '../core/retry.js';
import { changeTopic } from '../core/topics.js';
import { createMetricsRegistry } from '../core/metrics.js';
import { stackEnv, stackConfig } from '../stack/config.js';
import { stackUp } from '../stack/stack.js';
import { createFlagsReader } from '../client/flags.js';
import { createDarkReader } from '../client/dark-read.js';
import { routeRead } from '../client/routing.js';
import { createRunner, type BackgroundCommand, type ParityRunner } from './processes.js';
import { startLoad, type LoadGenerator } from './load.js';
import { DEMO_DATABASE_ENV, recreateDatabase, seedOrders, writeDemoSpec } from './setup.js';
import { checkEventsAgainstDatabase } from './end-state.js';
import { FLIP_PREFIX, reverseSlot } from '../reverse-sync/names.js';
import { readPosition } from '../reverse-sync/window-store.js';
import { coordinatorKeys } from '../coordinator/keys.js';
import { parseLsn } from '../core/lsn.js';

export interface DemoOptions {
  quick: boolean;
  rows?: number;
  rate?: number;
  out?: (line: string) => void;
}

export interface DemoResult {
  ok: boolean;
  failures: string[];
  reportPath: string;
  figures: Record<string, unknown>;
}

const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);

function jsonOf(stdout: string): any {
  const start = stdout.indexOf('{');
  const end = stdout.lastIndexOf('}');
  if (start < 0 || end < start) throw new ParityError('PARITY_INTERNAL', `expected JSON output, got: ${stdout.slice(0, 200)}`);
  return JSON.parse(stdout.slice(start, end + 1));
}

export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const say = options.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  let currentStep = 'starting';
  const step = (n: number, title: string) => {
    currentStep = `[${n}] ${title}`;
    say(`\n${bold(currentStep)}`);
  };
  const note = (line: string) => say(`    ${line}`);
  const rows = options.rows ?? (options.quick ? 20_000 : 200_000);
  const rate = options.rate ?? (options.quick ? 200 : 400);
  const failures: string[] = [];
  const figures: Record<string, unknown> = { rows, ratePerSecond: rate };
  const t0 = performance.now();

  step(0, 'Local stack');
  const status = await stackUp({});
  note(status.map((s) => `${s.service} ${s.action}`).join(', '));
  const env = { ...process.env, ...stackEnv() } as NodeJS.ProcessEnv;
  const runId = randomBytes(3).toString('hex');
  const dir = join(stackConfig().stateDir, 'demo', runId);
  mkdirSync(dir, { recursive: true });
  const database = await recreateDatabase(env.PARITY_SOURCE_URL!, 'parity_demo');
  await seedOrders(database, rows);
  env[DEMO_DATABASE_ENV] = database;
  const specPath = writeDemoSpec({ dir, runId, quick: options.quick });
  const { spec } = loadSpec(specPath, env);
  note(`database parity_demo with ${rows.toLocaleString()} orders of history (integer cents only); spec ${specPath}`);
  note(
    `(the spec reads its database from ${DEMO_DATABASE_ENV}: \`export ${DEMO_DATABASE_ENV}="\${PARITY_SOURCE_URL%/*}/parity_demo"\` to use it by hand)`,
  );
  const runner = createRunner(env);
  const parity = (args: string[], opts?: { tty?: boolean; allowFailure?: boolean }) =>
    runner.run([args[0]!, ...args.slice(1), ...(args.includes('--spec') ? [] : ['--spec', specPath])], opts);
  const db = new pg.Pool({ connectionString: database, max: 4 });
  const redis = createRedis(spec.infra.redis, { maxRetriesPerRequest: 2 });
  const flags = createFlagsReader({ redis, migration: spec.name, ttlMs: 200 });
  await flags.start();
  let bugRate = 0.03;
  let oldWriter = true;
  let contracted = false;
  // A previous run leaves its cohorts' flags behind (cut over: write=new, read=new), and they would
  // override the migration-wide flags of this fresh run: the demo's migration starts with none.
  if (spec.cohorts.length > 0) await redis.del(...spec.cohorts.map((c) => coordinatorKeys(spec.name).flags(c)));
  // After cutover each cohort's writers follow its own `write` flag; an order's cohort is its id's parity.
  const cohortFlags = new Map(spec.cohorts.map((c) => [c, createFlagsReader({ redis, migration: spec.name, cohort: c, ttlMs: 200 })]));
  for (const reader of cohortFlags.values()) await reader.start();
  const cohortOf = (id: number): string => spec.cohorts[id % Math.max(1, spec.cohorts.length)] ?? '';
  const background: BackgroundCommand[] = [];
  let reverseSync: BackgroundCommand | undefined;
  let load: LoadGenerator | undefined;
  try {
    const advance = async (reason: string) => {
      for (const cohort of spec.cohorts.length ? spec.cohorts : ['']) {
        const res = await parity(
          ['migrate', 'advance', ...(cohort ? ['--cohort', cohort] : []), '--reason', reason, '--actor', 'parity-demo', '--json'],
          { allowFailure: true },
        );
        if (res.code !== 0)
          throw new ParityError(
            'PARITY_GATE_FAILED',
            `migrate advance refused for ${cohort || 'the migration'}:\n${res.stdout}${res.stderr}`,
          );
        const out = jsonOf(res.stdout);
        note(`phase ${cohort ? `${cohort}: ` : ''}${out.from ?? out.fromPhase ?? '?'} -> ${out.to ?? out.toPhase ?? '?'}`);
      }
    };
    const setFlags = async (assignments: string[], reason: string) => {
      await parity(['flags', 'set', ...assignments, '--reason', reason, '--actor', 'parity-demo']);
      await flags.refresh();
      note(`flags: ${assignments.join(' ')} (${reason})`);
    };

    // Flags live in Redis under the migration's name and survive a previous run: start from the safe defaults.
    await setFlags(
      ['dual-write=off', 'read=old', 'read-percent=0', 'kill-backfill=off', 'kill-repair=off'],
      'demo starts from the safe defaults',
    );

    step(1, 'Traffic: checkout, refunds, fraud, and an old-version writer');
    load = await startLoad({
      url: database,
      ratePerSecond: rate,
      dualWrite: () => flags.current().dualWrite,
      bugRate: () => bugRate,
      oldWriterActive: () => oldWriter,
      contracted: () => contracted,
      writeNew: (id) => (cohortFlags.get(cohortOf(id)) ?? flags).current().write === 'new',
    });
    await sleep(1000);
    note(`${rate} writes/s; ${load.stats.inserts + load.stats.updates + load.stats.deletes} writes so far`);

    step(2, 'CDC: slot, exported-snapshot initial load, then streaming into Kafka');
    // A broker that has just started refuses producer ids for a moment: wait until it grants one.
    const ready = await waitForProducerId(spec.infra.kafka.brokers, 120_000);
    note(`Kafka grants producer ids (${ready.attempts} attempt${ready.attempts === 1 ? '' : 's'}, ${ready.seconds.toFixed(1)} s)`);
    background.push(runner.start(['cdc', 'run', '--spec', specPath], join(dir, 'cdc.log')));
    note(await waitForCdc(parity, 120_000));

    step(3, 'Expand: guarded DDL (lint, lock_timeout, retries) under the migration lock, while CDC streams');
    const lint = await parity(['lint'], { allowFailure: true });
    note(lint.stdout.trim().split('\n').slice(0, 3).join('\n    '));
    const expand = await parity(['expand', '--reason', 'add total_amount_minor and currency', '--actor', 'parity-demo']);
    note(expand.stdout.trim().split('\n').slice(-3).join('\n    '));
    await advance('columns added; CDC streaming');

    step(4, 'Dual-write on: new code writes both representations (with a bug in 3% of writes)');
    await setFlags(['dual-write=on'], 'checkout v2 deployed');
    await sleep(1500);
    await advance('dual-write on for every writer');

    step(5, 'Backfill: checkpointed, throttled key-range batches');
    const backfill = await parity(['backfill', 'run', '--json'], { tty: process.stderr.isTTY });
    const bf = jsonOf(backfill.stdout);
    figures.backfill = bf;
    note(
      `backfill ${bf.outcome}: ${bf.rowsDone} rows walked, ${bf.rowsChanged} written, ${bf.batches} batches in ${Number(bf.seconds).toFixed(1)}s`,
    );
    await advance('backfill complete');

    step(6, 'Verify: segment checksums in both representations, bisection, exact diffs');
    const first = jsonOf((await parity(['verify', '--json', '--new-run'], { allowFailure: true })).stdout);
    figures.firstVerify = summarizeVerify(first);
    note(
      `found ${summarizeVerify(first).confirmedDrift} rows of confirmed drift (${summarizeVerify(first).inFlight} in flight) among ${summarizeVerify(first).rowsSource} rows`,
    );
    const found = Number(summarizeVerify(first).confirmedDrift ?? 0);
    if (found === 0) failures.push('verification found none of the injected drift (old-version writer + dual-write bug)');

    step(7, 'Fix deployed (old writer retired, bug fixed), then repair the drift');
    bugRate = 0;
    oldWriter = false;
    await sleep(1500);
    const repair = await parity(['verify', '--repair', '--json', '--new-run'], { allowFailure: true });
    const repaired = jsonOf(repair.stdout);
    figures.repair = summarizeVerify(repaired);
    const outcomes = (summarizeVerify(repaired).repairs as { planned?: number; outcomes?: Record<string, number> } | null)?.outcomes ?? {};
    note(
      `repair: ${
        Object.entries(outcomes)
          .filter(([, n]) => n > 0)
          .map(([k, n]) => `${k} ${n}`)
          .join(', ') || 'nothing to repair'
      } (a repair skips a row that changed since it was observed)`,
    );
    const clean = await verifyUntilClean(parity, note);
    figures.verifyAfterRepair = clean;
    await advance('zero confirmed drift after repair');

    step(8, 'Compatibility: a v1 and a v2 consumer read every live event');
    const compat = await parity(['compat', 'gate'], { allowFailure: true });
    note(compat.stdout.trim().split('\n').join('\n    '));
    if (compat.code !== 0) failures.push(`compat gate failed: ${compat.stdout.slice(0, 400)}`);

    step(9, 'Cache v2: versioned keys kept fresh from CDC');
    background.push(runner.start(['cache', 'run', '--spec', specPath], join(dir, 'cache.log')));
    await sleep(5000);
    const cutover = await parity(['cache', 'cutover', '--to', 'v2'], { allowFailure: true });
    if (cutover.code !== 0) failures.push(`cache cutover failed: ${cutover.stderr.trim().split('\n').slice(-2).join(' ')}`);
    else {
      const c = jsonOf(cutover.stdout) as {
        current?: { read: string; populate: string[] };
        stoppedPopulating?: string[];
        remaining?: { version: string; estimate: number }[];
      };
      const old = (c.remaining ?? []).filter((r) => (c.stoppedPopulating ?? []).includes(r.version));
      note(
        `reads ${c.current?.read}, populating ${c.current?.populate.join(', ')}; stopped populating ${(c.stoppedPopulating ?? []).join(', ') || 'nothing'}`,
      );
      note(
        `old keys remaining (sampled estimate, they expire by TTL, never mass-deleted): ${old.map((r) => `${r.version} ~${r.estimate}`).join(', ') || 'none'}`,
      );
    }

    step(10, 'Dark reads: old path answers, new path compared (Scientist style)');
    await setFlags(['read=dark', 'read-percent=100'], 'dark reads for every key');
    const dark = await darkReads(db, spec, flags, rows);
    figures.darkReads = dark;
    note(`${dark.reads} dark reads: ${dark.matches} matched, ${dark.mismatches} mismatched`);
    if (dark.matches === 0) failures.push('dark reads compared nothing');
    if (dark.mismatches > 0) failures.push(`dark reads found ${dark.mismatches} mismatches`);
    await advance('dark reads match');

    step(11, 'Ramp: read path new at 1% -> 10% -> 50% -> 100%');
    for (const percent of [1, 10, 50, 100]) {
      await setFlags(['read=new', `read-percent=${percent}`], `ramp to ${percent}%`);
      const share = rampShare(spec, percent, 20_000);
      note(`${percent}%: ${share.toFixed(2)}% of 20,000 sample keys route to new`);
    }
    await advance('ramp at 100%');

    step(12, 'Enforce: NOT VALID -> VALIDATE, SET NOT NULL');
    const enforce = await parity(['enforce', '--reason', 'every writer writes the new columns', '--actor', 'parity-demo']);
    note(enforce.stdout.trim().split('\n').slice(-4).join('\n    '));

    step(13, 'Cutover: every cohort writes only the new columns; reverse sync keeps total_amount current');
    const cohorts = spec.cohorts.length ? spec.cohorts : [''];
    for (const cohort of cohorts) {
      const res = jsonOf(
        (
          await parity([
            'cutover',
            ...(cohort ? ['--cohort', cohort] : []),
            '--reason',
            'new read path at 100%, old side kept by reverse sync',
            '--actor',
            'parity-demo',
            '--json',
          ])
        ).stdout,
      );
      note(`cut over ${cohort || 'the migration'}: reverse slot ${res.slot} from ${res.fromLsn}`);
    }
    reverseSync = runner.start(['reverse-sync', 'run', '--spec', specPath, '--verify-every', '5'], join(dir, 'reverse-sync.log'));
    background.push(reverseSync);
    await sleep(3000);
    const newOnly = load.stats.inserts;
    await sleep(2000);
    note(`traffic keeps running: ${load.stats.inserts - newOnly} orders inserted in 2 s with the new columns only`);
    const during = jsonOf((await parity(['reverse-sync', 'status', '--json'])).stdout);
    note(
      `reverse sync: ${during.applied?.keys ?? 0} keys applied to total_amount, reverse slot ${during.slotLagBytes ?? '?'} bytes behind, ${during.unrepresentable} unrepresentable`,
    );
    if (!during.applied || Number(during.applied.keys) === 0) failures.push('reverse sync applied nothing after cutover');

    const back = cohorts[0]!;
    step(14, `Rollback of ${back ? `cohort ${back}` : 'the migration'} (a flag flip, nothing lost), then forward again`);
    // A rollback that finds reverse sync behind the flip after one lease aborts (routing stays on the
    // new side, nothing lost) and says to try again: what an operator does, the demo does, twice at most.
    let rolledBack: { code: number; stdout: string; stderr: string } | undefined;
    for (let attempt = 1; attempt <= 3; attempt++) {
      rolledBack = await parity(
        [
          'rollback',
          ...(back ? ['--cohort', back] : []),
          '--reason',
          'drill: back to the old representation',
          '--actor',
          'parity-demo',
          '--json',
        ],
        { allowFailure: true },
      );
      if (rolledBack.code === 0 || !rolledBack.stderr.includes('PARITY_ABORTED') || attempt === 3) break;
      note(`rollback attempt ${attempt} aborted (reverse sync had not reached the flip within one lease; nothing changed): again`);
    }
    if (rolledBack!.code !== 0) throw new ParityError('PARITY_GATE_FAILED', `rollback refused:\n${rolledBack!.stderr.trim()}`);
    const rolled = jsonOf(rolledBack!.stdout);
    note(`rolled back in ${rolled.waitedMs} ms: reverse sync had applied up to ${rolled.appliedLsn}, past the flip at ${rolled.flipLsn}`);
    await sleep(2000);
    await parity(['cutover', ...(back ? ['--cohort', back] : []), '--reason', 'drill over', '--actor', 'parity-demo']);
    note(`${back ? `cohort ${back}` : 'the migration'} cut over again`);
    figures.window = { rollbackWaitedMs: rolled.waitedMs, keysAppliedBeforeRollback: during.applied?.keys ?? 0 };
    await sleep(2000);

    step(15, 'Quiesce, then the exactness checks');
    await load.stop();
    figures.load = { ...load.stats };
    note(`load: ${JSON.stringify(load.stats)}`);
    load = undefined;
    // Reverse sync first (its writes to total_amount are changes CDC streams too), then CDC.
    await waitForReverseSync(db, spec, 60_000);
    await waitForCatchUp(db, spec.cdc.slot, 60_000);
    const finalVerify = await verifyUntilClean(parity, note);
    figures.finalVerify = finalVerify;
    const kafka = createKafka(spec.infra.kafka.brokers, { clientId: 'parity-demo-check' });
    const events = await checkEventsAgainstDatabase({
      kafka,
      registry: createSchemaRegistry(spec.infra.registry),
      registryUrl: spec.infra.registry.url,
      topic: changeTopic(spec.cdc.topicPrefix, spec.source.schema, spec.source.table),
      db,
      columns: ['id', 'customer_id', 'status', 'total_amount', 'total_amount_minor', 'currency'],
    });
    figures.events = events;
    note(
      `events: ${events.events} in Kafka for ${events.keysInKafka} keys; ${events.rowsInDatabase} rows; mismatched ${events.mismatched}, resurrected ${events.resurrected}`,
    );
    if (events.mismatched + events.resurrected > 0) failures.push(`events differ from the database: ${events.samples.join('; ')}`);
    await sleep(2000);
    const inspect = await parity(['cache', 'inspect', '--sample', String(options.quick ? 5_000 : 20_000)], { allowFailure: true });
    const inspected = safeJson(inspect.stdout) as { sampled?: number; stale?: number; inFlight?: number };
    note(`cache inspector: ${inspected.sampled} entries sampled, ${inspected.stale} stale, ${inspected.inFlight ?? 0} in flight`);
    figures.cacheInspect = { sampled: inspected.sampled, stale: inspected.stale };
    if (inspect.code !== 0) failures.push(`cache inspector found stale entries: ${inspect.stdout.trim().split('\n').slice(-1)[0]}`);
    // A clean inspection of nothing proves nothing: the versioner must have filled the cache.
    if (!inspected.sampled) failures.push('cache inspector sampled no entries: the cache versioner wrote nothing');
    // The old side, checked with the sides swapped, and clean for the gate's reverseWindowCleanMinutes.
    const firstCheck = await parity(['reverse-sync', 'check'], { allowFailure: true });
    await sleep(Math.ceil(spec.gates.contract.reverseWindowCleanMinutes * 60_000) + 1000);
    const reverseCheck = await parity(['reverse-sync', 'check', '--json'], { allowFailure: true });
    const window = safeJson(reverseCheck.stdout) as { clean?: boolean; summary?: string; cleanSince?: string };
    note(`${firstCheck.stdout.trim()}
    ${window.summary ?? reverseCheck.stdout.trim()}${window.cleanSince ? `; clean since ${window.cleanSince}` : ''}`);
    figures.reverseWindow = { clean: window.clean ?? false, cleanSince: window.cleanSince ?? null };
    if (reverseCheck.code !== 0) failures.push(`reverse window not clean: ${window.summary ?? reverseCheck.stdout.slice(0, 300)}`);
    await advance('writers on the new columns only; end state exact');

    step(16, 'Contract gate and report');
    const gate = await parity(['gate', 'contract'], { allowFailure: true });
    note(gate.stdout.trim().split('\n').join('\n    '));
    if (gate.code !== 0) failures.push('contract gate did not pass');
    const reportPath = join(dir, 'report.html');
    await parity(['report', '--format', 'html', '--out', reportPath]);
    note(`report: ${reportPath}`);
    figures.reportPath = reportPath;

    step(17, 'Contract: drop the old column, closing the reverse window');
    if (failures.length === 0) {
      contracted = true;
      const contract = await parity(['contract', '--yes', '--reason', 'contract gate passed', '--actor', 'parity-demo']);
      note(contract.stdout.trim().split('\n').slice(-3).join('\n    '));
      // The contract closed the window in its DDL's transaction: reverse sync stops by itself, exit 0.
      const code = await Promise.race([new Promise((r) => reverseSync?.child.once('exit', r)), sleep(20_000).then(() => 'timeout')]);
      const exited = reverseSync?.child.exitCode ?? code;
      note(`reverse sync ${exited === 0 ? 'stopped by itself (window closed), its slot dropped' : `did not stop: ${String(exited)}`}`);
      if (exited !== 0) failures.push(`reverse sync did not stop after contract (${String(exited)})`);
      const left = await db.query(
        `SELECT count(*)::int AS n FROM information_schema.columns WHERE table_name = 'orders' AND column_name = 'total_amount'`,
      );
      if (left.rows[0].n !== 0) failures.push('total_amount still exists after contract');
    } else note('skipped: the checks above failed');
    figures.seconds = Math.round((performance.now() - t0) / 100) / 10;
    return { ok: failures.length === 0, failures, reportPath, figures };
  } catch (err) {
    // A step that cannot go on ends the demo, but the figures so far and the reason still reach the
    // caller (`--json` prints them as its last line, as on success).
    failures.push(`${currentStep} stopped: ${err instanceof Error ? err.message : String(err)}`);
    figures.seconds = Math.round((performance.now() - t0) / 100) / 10;
    return { ok: false, failures, reportPath: '', figures };
  } finally {
    await load?.stop().catch(() => undefined);
    for (const b of background.reverse()) await b.stop().catch(() => undefined);
    // The slot would pin WAL on the developer's cluster; the database stays for inspection.
    await runner.run(['cdc', 'drop-slot', '--spec', specPath, '--force'], { allowFailure: true }).catch(() => undefined);
    // The reverse slot too, when the demo stopped before contract closed the window (contract drops it).
    await db
      .query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active', [
        reverseSlot(spec),
      ])
      .catch(() => undefined);
    await flags.close().catch(() => undefined);
    for (const reader of cohortFlags.values()) await reader.close().catch(() => undefined);
    redis.disconnect();
    await db.end().catch(() => undefined);
  }
}

function safeJson(text: string): unknown {
  try {
    return jsonOf(text);
  } catch {
    return text.slice(0, 500);
  }
}

/** The counts a person needs from a verification result, whatever else it carries. */
function summarizeVerify(result: any): Record<string, unknown> {
  const r = result.result ?? result.summary ?? result;
  const pick = (...names: string[]) => names.map((n) => r[n] ?? r.totals?.[n]).find((v) => v !== undefined);
  return {
    confirmedDrift: pick('confirmedDrift', 'confirmed'),
    inFlight: pick('inFlight', 'in_flight'),
    rowsSource: pick('sourceRows'),
    rowsTarget: pick('targetRows'),
    repairs: pick('repairs'),
    verdict: pick('verdict'),
  };
}

async function verifyUntilClean(
  parity: (a: string[], o?: { allowFailure?: boolean }) => Promise<{ code: number; stdout: string }>,
  note: (s: string) => void,
): Promise<Record<string, unknown>> {
  let last: Record<string, unknown> = {};
  for (let attempt = 1; attempt <= 5; attempt++) {
    const res = await parity(['verify', '--json', '--new-run'], { allowFailure: true });
    last = summarizeVerify(jsonOf(res.stdout));
    note(`verify #${attempt}: ${JSON.stringify(last)}`);
    if (Number(last.confirmedDrift ?? 1) === 0 && Number(last.inFlight ?? 0) === 0) return last;
    await sleep(2000);
  }
  throw new ParityError('PARITY_GATE_FAILED', `drift remains after repair: ${JSON.stringify(last)}`);
}

async function waitForCdc(
  parity: (a: string[], o?: { allowFailure?: boolean }) => Promise<{ code: number; stdout: string }>,
  timeoutMs: number,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const res = await parity(['cdc', 'status', '--json'], { allowFailure: true });
    last = res.stdout;
    try {
      const s = jsonOf(res.stdout) as { active?: boolean; lagBytes?: number; initialSnapshot?: InitialSnapshotStatus[] };
      const snapshots = s.initialSnapshot ?? [];
      // Done whichever way it finished: inside the exported snapshot, or continued incrementally.
      if (s.active && snapshots.length > 0 && snapshots.every((t) => t.done)) {
        const how = (t: InitialSnapshotStatus) =>
          t.continuedBy
            ? `${t.rows} + ${t.continuedBy.rows} rows (interrupted, finished by incremental snapshot #${t.continuedBy.id})`
            : `${t.rows} rows (op r)`;
        return `slot active, ${s.lagBytes} bytes behind; initial snapshot ${snapshots.map((t) => `${t.tableName} ${how(t)}`).join(', ')}`;
      }
    } catch {
      /* not yet */
    }
    await sleep(1000);
  }
  throw new ParityError('PARITY_INTERNAL', `CDC did not finish its initial snapshot in ${timeoutMs / 1000}s: ${last.slice(0, 400)}`);
}

/**
 * Waits until reverse sync has applied everything written so far: a marker transaction (the
 * rollback's flip message, which reverse sync applies at once) and its applied position past it.
 */
async function waitForReverseSync(db: pg.Pool, spec: Spec, timeoutMs: number): Promise<void> {
  const { rows } = await db.query('SELECT pg_logical_emit_message(true, $1, $2)::text AS lsn', [FLIP_PREFIX, spec.name]);
  const marker = rows[0].lsn as string;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const position = await readPosition(db, spec.control.schema, spec.name);
    if (position && position.commitLsn >= parseLsn(marker)) return;
    await sleep(250);
  }
  throw new ParityError(
    'PARITY_INTERNAL',
    `reverse sync (slot ${reverseSlot(spec)}) did not apply up to ${marker} in ${timeoutMs / 1000}s`,
  );
}

/** Waits until the slot has confirmed everything written so far. */
async function waitForCatchUp(db: pg.Pool, slot: string, timeoutMs: number): Promise<void> {
  const { rows } = await db.query('SELECT pg_current_wal_lsn()::text AS lsn');
  const target = rows[0].lsn as string;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const res = await db.query('SELECT confirmed_flush_lsn >= $2::pg_lsn AS done FROM pg_replication_slots WHERE slot_name = $1', [
      slot,
      target,
    ]);
    if (res.rows[0]?.done) return;
    await sleep(250);
  }
  throw new ParityError('PARITY_INTERNAL', `CDC slot ${slot} did not catch up to ${target} in ${timeoutMs / 1000}s`);
}

/**
 * Old path: total_amount read as minor units in USD; new path: the new columns. The dark reader
 * returns the old answer and compares in the background; its metrics count the mismatches.
 */
async function darkReads(
  db: pg.Pool,
  spec: Spec,
  flags: ReturnType<typeof createFlagsReader>,
  rows: number,
): Promise<{ reads: number; mismatches: number; matches: number }> {
  const metrics = createMetricsRegistry({ defaultMetrics: false });
  const reader = createDarkReader<{ minor: string; currency: string } | null>({
    migration: spec.name,
    route: (key) => flags.route(key),
    compare: (a, b) => JSON.stringify(a) === JSON.stringify(b),
    metrics,
  });
  const sample = Math.min(2_000, rows);
  for (let i = 0; i < sample; i++) {
    const id = 1 + Math.floor(Math.random() * rows);
    await reader.read(id, {
      old: async () => {
        const r = await db.query('SELECT total_amount::bigint::text AS minor FROM orders WHERE id = $1', [id]);
        return r.rows[0] ? { minor: r.rows[0].minor, currency: 'USD' } : null;
      },
      new: async () => {
        const r = await db.query('SELECT total_amount_minor::text AS minor, currency FROM orders WHERE id = $1', [id]);
        return r.rows[0] ? { minor: r.rows[0].minor, currency: r.rows[0].currency } : null;
      },
    });
  }
  await reader.flush();
  const counts = (await metrics.getSingleMetric('parity_client_dark_reads_total')?.get())?.values ?? [];
  const count = (result: string) => counts.filter((v) => v.labels.result === result).reduce((a, v) => a + v.value, 0);
  return { reads: sample, mismatches: count('mismatch') + count('candidate_error'), matches: count('match') };
}

function rampShare(spec: Spec, percent: number, keys: number): number {
  let routed = 0;
  for (let id = 1; id <= keys; id++) if (routeRead({ read: 'new', readPercent: percent }, id, spec.name) === 'new') routed++;
  return (100 * routed) / keys;
}
