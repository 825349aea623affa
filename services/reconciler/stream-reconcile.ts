/**
 * Stream verification (`parity reconcile`): a Kafka consumer group over the source table's CDC
 * topic. For every change of the old representation it checks the new one: inside the same event
 * when both live in one row (same-table migrations), otherwise by reading the target row by key.
 * A difference is only called a mismatch if it persists for `reconcile.retryWindowMs` while the
 * event is still the source's current state: the target may be catching up (wait and re-read), or
 * a newer change of the key may already be on its way (superseded; its own event is checked).
 *
 * Mismatches are counted, recorded in the control schema and published to
 * `<cdc.topicPrefix>.parity.mismatches` with the old row, the expected and actual new values and
 * the positions; undecodable events go to `<cdc.topicPrefix>.parity.dlq.reconciler.<spec.name>` with their origin and the
 * reason. Offsets are committed only after a chunk's verdicts (and messages) are out. The consumer
 * group's lifecycle, backoff, dead-lettering and commits are connectors/kafka-sink/consumer-loop.ts;
 * this file is what stream verification does with a chunk.
 */
import type pg from 'pg';
import {
  type ChunkContext,
  type ConsumedMessage,
  type ConsumerLag,
  type ConsumerLoop,
  consumerReadiness,
  createConsumerLoop,
} from '../../connectors/kafka-sink/consumer-loop.js';
import type { KafkaClients } from '../core/clients.js';
import type { ChangeDecoder, DecodedChange } from '../../connectors/kafka-sink/serde.js';
import { changeTopic, HEADERS, UNCHANGED_TOAST, type Row } from '../core/change-event.js';
import { deadLetterTopic, mismatchTopic } from '../core/topics.js';
import { recordEvidence } from '../core/control.js';
import { type ParityError, isParityError, toParityError } from '../core/errors.js';
import { FenceWatch, readLatestToken } from '../core/fence-watch.js';
import type { HealthReport, ProbeReport } from '../core/http.js';
import { kafkaError } from '../core/kafka-errors.js';
import type { Logger } from '../core/log.js';
import { encodePosition, formatLsn } from '../core/lsn.js';
import { sleep as realSleep } from '../core/retry.js';
import type { LoadedSpec } from '../core/spec.js';
import { tables } from './control-store.js';
import { expectationsFor, sourceColumns, type Expectation, type SourceColumn } from './event-expectation.js';
import type { KeyTuple } from './key-range.js';
import type { ReconcilerMetrics } from './metrics.js';
import { jsNormalize } from './normalize.js';
import type { Projection } from './projection.js';
import { repairItem, resolveToken, type RepairContext, type RepairItem } from './repair.js';
import { rowsByKeys, type FetchedRow } from './segment-hash.js';

type Queryable = Pick<pg.ClientBase, 'query'>;

export type Verdict = 'match' | 'mismatch' | 'superseded' | 'skipped' | 'dead-letter';

export interface CheckResult {
  key: KeyTuple;
  op: string;
  verdict: Verdict;
  position: string;
  reason?: string;
}

export interface StreamReconcilerOptions {
  groupId: string;
  fromBeginning: boolean;
  /** Repair persisting mismatches (null: report only). */
  repair: { apply: boolean; token: bigint | null } | null;
  chunkSize?: number;
  pollMs?: number;
  /** Called with each chunk's verdicts (tests, status pages). */
  onChecked?: (results: CheckResult[]) => void;
}

export interface StreamReconcilerDeps {
  loaded: LoadedSpec;
  kafka: KafkaClients;
  decoder: ChangeDecoder;
  projection: Projection;
  /** Read-only session on the source database (mapping evaluation, current rows). */
  source: pg.Client;
  /** Read-only session on the target database. */
  target: pg.Client;
  /** Control database session (mismatch records, evidence). */
  control: pg.Client;
  /** Write session on the target database, for repairs. */
  repairTarget?: pg.Client;
  /**
   * A connection of its own to the target database, where the repairs' fencing token is watched
   * (core/fence-watch.ts): superseded, /readyz answers "lock lost" before the next repair fails.
   */
  fenceReader?: Pick<pg.Pool, 'query'>;
  /** How often the fence watch reads the latest token (default FENCE_WATCH_INTERVAL_MS). */
  fenceWatchMs?: number;
  /** The coordinator's kill-repair flag; on means repairs write nothing. */
  killSwitch?: () => Promise<boolean>;
  logger: Logger;
  metrics: ReconcilerMetrics;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

export interface StreamStatus {
  state: 'starting' | 'consuming' | 'stopped' | 'failed';
  reason?: string;
  checked: number;
  matched: number;
  mismatches: number;
  superseded: number;
  skipped: number;
  deadLetters: number;
  repaired: number;
  lastPosition: string | null;
}

export interface StreamReconciler {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Settles when the reconciler stops (rejects when it failed). */
  done: Promise<void>;
  status(): StreamStatus;
  health(): HealthReport;
  /** How far behind the end of its partitions it is (`messages` null before the first end-offset read). */
  lag(): ConsumerLag;
  /**
   * `/readyz`: consuming (not paused) and at most `maxLagMessages` behind; otherwise the reason.
   * Paused stays healthy (`/healthz`) but is not ready. Repairing with a superseded fencing token
   * is not ready either ("lock lost: fencing token N superseded by M").
   */
  readiness(maxLagMessages: number): Exclude<ProbeReport, boolean>;
}

export { mismatchTopic } from '../core/topics.js';

/** Sessions and settings a check of changes needs (forward: the reconciler's; reverse: sides swapped). */
export interface ChangeCheckContext {
  /** Read-only session on the side whose changes are checked (the mapping's input). */
  source: Queryable;
  /** Read-only session on the side that must match. */
  target: Queryable;
  projection: Projection;
  /** Same-table: the first look compares the event's own new values (`inEvent`), without a read. */
  sameTable: boolean;
  /** How long a difference may last while the change is still the source's state before it is a mismatch. */
  retryWindowMs: number;
  pollMs: number;
  sleep: (ms: number) => Promise<void>;
  now: () => number;
}

/** One change to check: its key, the row it leaves, and what is known of the expected new values. */
export interface ChangeToCheck {
  key: KeyTuple;
  /**
   * The row as the change leaves it (null after a delete). A feed that carries keys only passes an
   * empty row with `expected` null: the current source row is then the state checked.
   */
  state: Row | null;
  /** The mapping over `state` (null: read the current source row instead). */
  expected: Expectation | null;
  /** Same-table: the new values carried by the event itself. */
  inEvent: Array<string | null> | null;
}

export interface ChangeVerdict {
  verdict: Verdict;
  reason?: string;
  source: FetchedRow | null;
  target: FetchedRow | null;
  targetPosition: string | null;
}

/**
 * Checks changes against the other side: a match at first look (the event itself, or the target
 * row by key), else both sides are re-read until the target catches up (match), the source moves on
 * (superseded: its newer change is checked on its own), or `retryWindowMs` ends (mismatch). The
 * forward stream reconciler feeds it Kafka change events; reverse sync (issue 23) feeds it the keys
 * it applied, with the sides swapped and the reverse mapping.
 */
export async function checkChanges<P extends ChangeToCheck>(ctx: ChangeCheckContext, batch: P[]): Promise<Map<P, ChangeVerdict>> {
  const { projection, sameTable, pollMs, sleep, now } = ctx;
  const out = new Map<P, ChangeVerdict>();
  let open: P[] = [];
  // First look: the event itself (same-table), or the target row by key.
  if (sameTable) {
    for (const p of batch) {
      if (p.state === null)
        out.set(p, {
          verdict: 'skipped',
          reason: 'deleted: old and new representation went together',
          source: null,
          target: null,
          targetPosition: null,
        });
      else if (p.expected && p.inEvent && sameValues(p.expected.values, p.inEvent))
        out.set(p, { verdict: 'match', source: null, target: null, targetPosition: null });
      else open.push(p);
    }
  } else {
    const current = byKt(
      await rowsByKeys(
        ctx.target,
        projection.target,
        batch.map((p) => p.key),
      ),
    );
    for (const p of batch) {
      const t = p.expected ? current.get(p.expected.kt) : [...current.values()].find((r) => r.key.every((v, i) => v === p.key[i]));
      if (p.state === null ? !t : p.expected !== null && t !== undefined && sameValues(p.expected.values, t.values))
        out.set(p, { verdict: 'match', source: null, target: t ?? null, targetPosition: null });
      else open.push(p);
    }
  }
  // Differences: re-read both sides until the target catches up, the source moves on, or the window ends.
  const deadline = now() + ctx.retryWindowMs;
  for (let attempt = 0; open.length > 0; attempt++) {
    const last = now() >= deadline;
    if (attempt > 0) await sleep(pollMs);
    const keys = open.map((p) => p.key);
    const [s, t, pos] = await Promise.all([
      rowsByKeys(ctx.source, projection.source, keys),
      rowsByKeys(ctx.target, projection.target, keys),
      ctx.target.query(`SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text AS p`),
    ]);
    const sources = new Map<string, FetchedRow>();
    for (const r of s) sources.set(r.key.join('\u0000'), r);
    const targets = new Map<string, FetchedRow>();
    for (const r of t) targets.set(r.key.join('\u0000'), r);
    const still: P[] = [];
    for (const p of open) {
      const k = p.key.join('\u0000');
      const src = sources.get(k) ?? null;
      const tgt = targets.get(k) ?? null;
      if (p.expected === null && p.state !== null) {
        // No expectation from the event (an unchanged TOASTed value, or a feed of keys only, like
        // reverse sync's): the current source row is the state checked.
        p.expected = src ? { kt: src.kt, values: src.values } : null;
        if (!src) {
          out.set(p, {
            verdict: 'superseded',
            reason: 'the row is gone from the source',
            source: null,
            target: tgt,
            targetPosition: String(pos.rows[0].p),
          });
          continue;
        }
      }
      const sourceIsEvent =
        p.state === null ? src === null : src !== null && p.expected !== null && sameValues(src.values, p.expected.values);
      if (!sourceIsEvent) {
        out.set(p, {
          verdict: 'superseded',
          reason: 'a newer change of this key is in the stream',
          source: src,
          target: tgt,
          targetPosition: String(pos.rows[0].p),
        });
        continue;
      }
      const targetOk = p.state === null ? tgt === null : tgt !== null && sameValues(tgt.values, p.expected!.values);
      if (targetOk) out.set(p, { verdict: 'match', source: src, target: tgt, targetPosition: String(pos.rows[0].p) });
      else if (last) {
        out.set(p, {
          verdict: 'mismatch',
          reason:
            p.state === null
              ? 'deleted in the source, still present in the target'
              : tgt === null
                ? 'missing in the target'
                : 'the target differs from the mapped source',
          source: src,
          target: tgt,
          targetPosition: String(pos.rows[0].p),
        });
      } else still.push(p);
    }
    open = still;
  }
  return out;
}

interface Pending extends ChangeToCheck {
  change: DecodedChange;
  message: ConsumedMessage;
}

function byKt(rows: FetchedRow[]): Map<string, FetchedRow> {
  const m = new Map<string, FetchedRow>();
  for (const r of rows) if (!m.has(r.kt)) m.set(r.kt, r);
  return m;
}

function sameValues(a: Array<string | null>, b: Array<string | null>): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function asObject(columns: string[], values: Array<string | null> | null): Record<string, string | null> | null {
  return values ? Object.fromEntries(columns.map((c, i) => [c, values[i] ?? null])) : null;
}

export function createStreamReconciler(deps: StreamReconcilerDeps, options: StreamReconcilerOptions): StreamReconciler {
  const { loaded, projection, logger, metrics } = deps;
  const { spec } = loaded;
  const sleep = deps.sleep ?? realSleep;
  const now = deps.now ?? (() => performance.now());
  const topic = changeTopic(spec.cdc.topicPrefix, spec.source.schema, spec.source.table);
  const mismatchesTo = mismatchTopic(spec.cdc.topicPrefix);
  const deadLettersTo = deadLetterTopic(spec.cdc.topicPrefix, 'reconciler', spec.name);
  const chunkSize = options.chunkSize ?? 200;
  const pollMs = options.pollMs ?? 200;
  const sameTable = spec.target.kind === 'same-table';
  const status: StreamStatus = {
    state: 'starting',
    checked: 0,
    matched: 0,
    mismatches: 0,
    superseded: 0,
    skipped: 0,
    deadLetters: 0,
    repaired: 0,
    lastPosition: null,
  };
  const startedAt = new Date();
  let columns: SourceColumn[] = [];
  let loop: ConsumerLoop | null = null;
  /** The context of the chunk being handled (one at a time: the loop runs one partition's chunk at once). */
  let chunk: ChunkContext | null = null;
  let token: bigint | null = null;
  let fenceWatch: FenceWatch | undefined;
  let settle: { resolve: () => void; reject: (e: unknown) => void } | null = null;
  const done = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
  // Nobody may be awaiting `done` when it rejects; that must not crash the process.
  done.catch(() => undefined);

  async function deadLetter(message: ConsumedMessage, _partition: number, reason: string, stage: string): Promise<void> {
    await chunk!.deadLetter(message, reason, stage);
    status.deadLetters++;
    metrics.streamEvents.inc({ result: 'dead_letter' });
  }

  function keyOf(change: DecodedChange): KeyTuple | null {
    const row = change.key ?? change.envelope.after ?? change.envelope.before;
    if (!row) return null;
    const out: string[] = [];
    for (const k of projection.keyColumns) {
      const v = row[k];
      if (v === null || v === undefined) return null;
      out.push(String(v));
    }
    return out;
  }

  /** The event's own new values, normalized in JS (same-table: old and new share the event). */
  function inEventValues(after: Row): Array<string | null> {
    return projection.target.values.map((v, i) => jsNormalize(after[v.column], v.type, projection.rules[i]!));
  }

  async function evaluate(batch: Pending[], partition: number): Promise<Pending[]> {
    const withRows = batch.filter((p) => p.state !== null && !Object.values(p.state).includes(UNCHANGED_TOAST));
    try {
      const exp = await expectationsFor(
        deps.source,
        projection,
        columns,
        withRows.map((p) => p.state!),
      );
      withRows.forEach((p, i) => (p.expected = exp[i]!));
      return batch;
    } catch (err) {
      if (!isParityError(err, 'PARITY_BAD_INPUT')) throw err;
    }
    // One bad value fails the whole chunk's query: evaluate one by one and dead-letter the bad ones.
    const kept: Pending[] = [];
    for (const p of batch) {
      if (!withRows.includes(p)) {
        kept.push(p);
        continue;
      }
      try {
        p.expected = (await expectationsFor(deps.source, projection, columns, [p.state!]))[0]!;
        kept.push(p);
      } catch (err) {
        if (!isParityError(err, 'PARITY_BAD_INPUT')) throw err;
        await deadLetter(p.message, partition, err.message, 'mapping');
      }
    }
    return kept;
  }

  function check(batch: Pending[]): Promise<Map<Pending, ChangeVerdict>> {
    return checkChanges(
      { source: deps.source, target: deps.target, projection, sameTable, retryWindowMs: spec.reconcile.retryWindowMs, pollMs, sleep, now },
      batch,
    );
  }

  async function publishMismatch(
    p: Pending,
    r: { reason?: string; source: FetchedRow | null; target: FetchedRow | null; targetPosition: string | null },
    partition: number,
  ): Promise<void> {
    const cols = projection.columns;
    const position = p.change.position;
    const payload = {
      migration: spec.name,
      kind: p.state === null ? 'exclusive-target' : r.target === null ? 'exclusive-source' : 'updated',
      reason: r.reason,
      op: p.change.envelope.op,
      key: Object.fromEntries(projection.keyColumns.map((k, i) => [k, p.key[i]])),
      old: p.change.envelope.after ?? p.change.envelope.before,
      expected: p.state === null ? null : asObject(cols, p.expected?.values ?? null),
      actual: asObject(cols, r.target?.values ?? null),
      position: { commitLsn: formatLsn(position.commitLsn), ordinal: position.ordinal, encoded: encodePosition(position) },
      targetPosition: r.targetPosition,
      origin: { topic, partition, offset: String(p.message.offset) },
      detectedAt: new Date().toISOString(),
    };
    await chunk!.producer
      .send({
        messages: [
          {
            topic: mismatchesTo,
            key: JSON.stringify(payload.key),
            value: JSON.stringify(payload),
            headers: { [HEADERS.position]: encodePosition(position) },
          },
        ],
      })
      .catch((err: unknown) => {
        throw kafkaError(err, `cannot publish a mismatch to ${mismatchesTo}`);
      });
    await deps.control.query(
      `INSERT INTO ${tables(spec.control.schema).stream} (migration, key, position, expected, actual, reason) VALUES ($1, $2, $3, $4, $5, $6)`,
      [
        spec.name,
        JSON.stringify(p.key),
        encodePosition(position),
        JSON.stringify(payload.expected),
        JSON.stringify(payload.actual),
        r.reason ?? 'mismatch',
      ],
    );
    status.mismatches++;
    metrics.streamMismatches.inc();
    if (options.repair) {
      const item: RepairItem = {
        key: p.key,
        kind: payload.kind,
        sourceHashes: r.source ? [r.source.h] : [],
        targetHashes: r.target ? [r.target.h] : [],
      };
      const ctx: RepairContext = {
        spec,
        projection,
        source: deps.source,
        target: deps.repairTarget!,
        control: deps.control,
        controlIsTarget: false,
        logger,
        metrics,
        ...(deps.killSwitch ? { killSwitch: deps.killSwitch } : {}),
      };
      const outcome = await repairItem(ctx, item, { apply: options.repair.apply, token, origin: 'reconcile', runId: null }, token);
      if (outcome === 'applied') status.repaired++;
    }
  }

  async function processChunk(messages: ConsumedMessage[], partition: number): Promise<void> {
    const started = now();
    const decoded: Pending[] = [];
    for (const message of messages) {
      // A tombstone (the debezium encoding writes one after each delete) says nothing the delete did not.
      if (!message.value || message.value.length === 0) continue;
      let change: DecodedChange;
      try {
        change = await deps.decoder.decode(topic, message, partition);
      } catch (err) {
        const e = toParityError(err, 'PARITY_DECODE');
        if (e.retriable) throw e;
        await deadLetter(message, partition, e.message, 'decode');
        continue;
      }
      status.lastPosition = encodePosition(change.position);
      if (change.envelope.op === 't') {
        status.skipped++;
        metrics.streamEvents.inc({ result: 'skipped' });
        continue;
      }
      const key = keyOf(change);
      if (!key) {
        await deadLetter(message, partition, 'the event carries no value for a key column of the spec', 'key');
        continue;
      }
      const state = change.envelope.op === 'd' ? null : change.envelope.after;
      let inEvent: Array<string | null> | null = null;
      if (sameTable && state) {
        try {
          inEvent = Object.values(state).includes(UNCHANGED_TOAST) ? null : inEventValues(state);
        } catch (err) {
          await deadLetter(message, partition, (err as Error).message, 'normalize');
          continue;
        }
      }
      decoded.push({ change, message, key, state, expected: null, inEvent });
    }
    // Per key only the latest change of the chunk is checked: earlier ones are superseded by it.
    const latest = new Map<string, Pending>();
    for (const p of decoded) latest.set(p.key.join('\u0000'), p);
    const superseded = decoded.length - latest.size;
    status.superseded += superseded;
    metrics.streamEvents.inc({ result: 'superseded' }, superseded);
    const batch = await evaluate([...latest.values()], partition);
    const verdicts = await check(batch);
    const results: CheckResult[] = [];
    for (const [p, r] of verdicts) {
      status.checked++;
      if (r.verdict === 'match') status.matched++;
      else if (r.verdict === 'superseded') status.superseded++;
      else if (r.verdict === 'skipped') status.skipped++;
      metrics.streamEvents.inc({ result: r.verdict.replace('-', '_') });
      if (r.verdict === 'mismatch') await publishMismatch(p, r, partition);
      results.push({
        key: p.key,
        op: p.change.envelope.op,
        verdict: r.verdict,
        position: encodePosition(p.change.position),
        ...(r.reason ? { reason: r.reason } : {}),
      });
    }
    metrics.streamCheckSeconds.observe((now() - started) / 1000);
    options.onChecked?.(results);
  }

  function fail(err: ParityError): void {
    fenceWatch?.noteWriteError(err);
    if (status.state === 'failed') return;
    status.state = 'failed';
    status.reason = err.message;
    logger.error({ code: err.code, err: err.message }, 'stream verification stopped on a non-retriable error');
    void shutdown().finally(() => settle?.reject(err));
  }

  let shutDown = false;
  async function shutdown(): Promise<void> {
    if (shutDown) return;
    shutDown = true;
    fenceWatch?.stop();
    const l = loop;
    loop = null;
    await l?.stop().catch(() => undefined);
    await recordEvidence(deps.control, spec.control.schema, {
      migration: spec.name,
      kind: 'reconcile',
      passed: status.mismatches === 0 && status.deadLetters === 0,
      summary: `stream verification: ${status.checked} changes checked, ${status.mismatches} mismatches, ${status.deadLetters} dead letters`,
      value: { ...status, startedAt: startedAt.toISOString(), finishedAt: new Date().toISOString(), topic },
    }).catch((err: unknown) => logger.error({ err: (err as Error).message }, 'could not record reconcile evidence'));
  }

  return {
    done,
    async start() {
      columns = await sourceColumns(deps.source, projection);
      if (options.repair?.apply) {
        const t = await resolveToken(
          deps.repairTarget!,
          spec.control.schema,
          spec.name,
          options.repair.token,
          `parity reconcile ${options.groupId}`,
        );
        token = t.token;
        if (deps.fenceReader) {
          const reader = deps.fenceReader;
          fenceWatch = new FenceWatch({
            scope: spec.name,
            token: t.token,
            latest: () => readLatestToken(reader, spec.control.schema, spec.name),
            ...(deps.fenceWatchMs ? { intervalMs: deps.fenceWatchMs } : {}),
            logger,
            gauge: metrics.lockLost,
          }).start();
        }
        if (t.acquired)
          logger.warn(
            { token: t.token.toString() },
            'no --fence-token given: acquired a fencing token, which fences out the previous holder',
          );
      }
      loop = createConsumerLoop({
        kafka: deps.kafka,
        groupId: options.groupId,
        topic,
        fromBeginning: options.fromBeginning,
        deadLetterTopic: deadLettersTo,
        extraTopics: [mismatchesTo],
        service: 'reconciler',
        missingTopicHint: 'start `parity cdc run --spec FILE` first (it creates the change topics)',
        chunkSize,
        logger,
        sleep,
        async handle(c, ctx) {
          chunk = ctx;
          await processChunk(c.messages, c.partition);
        },
        onPausedChange: (paused) => metrics.streamPaused.set(paused ? 1 : 0),
        onLag: (lag) => {
          if (lag.messages !== null) metrics.streamLagMessages.set({ topic }, lag.messages);
          metrics.streamLagSeconds.set({ topic }, lag.oldestSeconds);
        },
      });
      await loop.start();
      loop.done.catch((err: unknown) => fail(toParityError(err, 'PARITY_KAFKA')));
      status.state = 'consuming';
      logger.info({ topic, groupId: options.groupId }, 'stream verification consuming');
    },
    async stop() {
      if (status.state !== 'failed') status.state = 'stopped';
      await shutdown();
      settle?.resolve();
    },
    status: () => ({ ...status }),
    health() {
      const ok = status.state === 'consuming' || status.state === 'starting';
      // Paused (retrying a chunk without committing) is healthy but worth its reason.
      const paused = loop?.status().state === 'paused' ? loop.status().reason : undefined;
      const reason = status.reason ?? (paused ? `paused: ${paused}` : undefined);
      const lag = loop?.lag();
      return { ok, status: status.state, ...(reason ? { reason } : {}), details: { ...status, ...(lag ? { lag } : {}) } };
    },
    lag: () => loop?.lag() ?? { messages: null, oldestSeconds: 0, partitions: 0 },
    readiness(maxLagMessages) {
      const lost = fenceWatch?.readiness();
      if (lost) return lost;
      const inLoop = loop?.status();
      const state =
        status.state === 'consuming' && inLoop?.state === 'paused'
          ? { status: 'paused', reason: `paused: ${inLoop.reason ?? 'retrying'}` }
          : { status: status.state, ...(status.reason ? { reason: status.reason } : {}) };
      return consumerReadiness(state, loop?.lag() ?? { messages: null, oldestSeconds: 0, partitions: 0 }, maxLagMessages);
    },
  };
}
