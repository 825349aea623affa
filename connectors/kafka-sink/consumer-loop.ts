/**
 * The one consumer skeleton every parity consumer group runs on (stream verification, the cache
 * versioner): it owns the group's lifecycle, backoff, dead-lettering and offset commits, and hands
 * each service only chunks of one partition's messages, in offset order.
 *
 * - **Commits only what was applied.** A chunk's offset is handed to the coalesced committer
 *   (offset-committer.ts) only after the service's `handle` resolved for it; `stop()` waits for the
 *   chunk in progress and commits what was applied while the member is still in the group.
 * - **Pause, never skip.** A retriable failure (ParityError `retriable`) while handling a chunk pauses
 *   consumption (nothing more is read, so the stream's buffer fills and fetching stops) and retries the
 *   same chunk with jittered exponential backoff until it succeeds; `status()` says `paused` and why.
 *   A non-retriable failure stops the loop loudly: `done` rejects with it.
 * - **Dead letters carry their origin and reason.** `ctx.deadLetter` copies the message (key, value,
 *   headers) to the dead-letter topic with `parity.dlq.origin` (`topic/partition/offset`),
 *   `parity.dlq.reason`, `parity.dlq.stage` and `parity.dlq.service`, acks=all.
 * - **The group survives Kafka outages.** When the consumer stream fails (a broker restart), the loop
 *   closes the consumer and joins again after a backoff; the group resumes from the last commit.
 * - **It knows how far behind it is.** The client's fetch responses carry the high watermarks, but
 *   its public API does not expose them: the loop asks for the assigned partitions' end offsets with
 *   `listOffsets` at most once per `lagIntervalMs` and compares them with the position it processed
 *   (`lag()`); `consumerReadiness` turns that into the services' `/readyz` answer.
 */
import { ListOffsetTimestamps } from '@platformatic/kafka';
import type { ConsumedMessage, KafkaClients, KafkaConsumer, KafkaProducer } from '../../services/core/clients.js';
import { ParityError, toParityError } from '../../services/core/errors.js';
import { kafkaError } from '../../services/core/kafka-errors.js';
import type { Logger } from '../../services/core/log.js';
import type { ProbeReport } from '../../services/core/http.js';
import { backoffDelay, sleep as realSleep } from '../../services/core/retry.js';
import { ensureTopics, listTopics } from './admin.js';
import { createOffsetCommitter } from './offset-committer.js';

export type { ConsumedMessage } from '../../services/core/clients.js';

/** Consecutive messages of one partition, in offset order. */
export interface PartitionChunk {
  topic: string;
  partition: number;
  messages: ConsumedMessage[];
}

/** Thrown out of `untilDone` when the loop is stopping: the chunk is abandoned, nothing of it committed. */
export class Abandoned extends Error {}

export interface ChunkContext {
  /**
   * Runs `work` until it succeeds: a retriable error pauses (status `paused`, backoff) and tries again;
   * anything else is thrown. Throws `Abandoned` once the loop is stopping. Use it around a step whose
   * repetition must not repeat earlier steps (e.g. a Redis write after dead letters were sent).
   */
  untilDone<T>(what: string, work: () => Promise<T>): Promise<T>;
  /** Sends `message` to the dead-letter topic with its origin, `reason` and `stage`; retried while retriable. */
  deadLetter(message: ConsumedMessage, reason: string, stage: string): Promise<void>;
  /** The loop's idempotent producer (acks=all), for a service's own messages (e.g. mismatches). */
  readonly producer: KafkaProducer;
}

export interface ConsumerLoopOptions {
  kafka: KafkaClients;
  groupId: string;
  topic: string;
  /** Where a group without a committed offset starts: the oldest retained message, or new ones only. */
  fromBeginning: boolean;
  deadLetterTopic: string;
  /** Written in `parity.dlq.service` (e.g. `reconciler`, `cache-versioner`). */
  service: string;
  /** What to tell the user when `topic` does not exist. */
  missingTopicHint: string;
  /** More topics created if missing (one partition each), e.g. a mismatch topic. */
  extraTopics?: string[];
  /** What the service does with a chunk. Throwing a retriable ParityError retries the whole chunk. */
  handle(chunk: PartitionChunk, ctx: ChunkContext): Promise<void>;
  /** Messages per chunk; default 500. */
  chunkSize?: number;
  /** Partitions handled in parallel; default 1. */
  concurrency?: number;
  /** Shortest time between two offset commits; default 250 ms. */
  commitIntervalMs?: number;
  /** How long a fetch may wait for data; default 100 ms. */
  fetchMaxWaitMs?: number;
  /** Longest backoff while paused; default 2000 ms. */
  maxBackoffMs?: number;
  logger: Logger;
  /** Called with every retriable error before its backoff (metrics). */
  onRetry?: (error: ParityError) => void;
  /** Called when the loop pauses (true) or resumes (false). */
  onPausedChange?: (paused: boolean) => void;
  /**
   * How often the partitions' end offsets are read for `lag()`; default 1000 ms. 0 = never: the lag
   * stays unmeasured and `consumerReadiness` never says ready.
   */
  lagIntervalMs?: number;
  /** Called with the lag after each end-offset read and each applied chunk (metrics). */
  onLag?: (lag: ConsumerLag) => void;
  now?: () => number;
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export interface ConsumerLoopStatus {
  state: 'starting' | 'consuming' | 'paused' | 'stopped' | 'failed';
  reason?: string;
}

/** How far the member is behind on the partitions it owns. */
export interface ConsumerLag {
  /**
   * Sum over the owned partitions of (end offset - next offset to process); null until the end
   * offsets were read once. Before a partition's first fetched message, its next offset is the
   * group's committed offset (without one: the log start with `fromBeginning`, else the end). The
   * end offsets are at most `lagIntervalMs` old, so a burst produced since the last read is not
   * counted yet. Offsets, not messages, on a compacted topic.
   */
  messages: number | null;
  /**
   * Age of the oldest message fetched but not processed yet, by its Kafka timestamp (0 when the
   * loop holds none): while behind, the loop always holds the oldest unprocessed message.
   */
  oldestSeconds: number;
  /** Partitions of the topic this member owns. */
  partitions: number;
}

export interface ConsumerLoop {
  /** Checks the topics, connects and joins the group; resolves once consuming. */
  start(): Promise<void>;
  /** Finishes (or abandons) the chunk in progress, commits what was applied, leaves the group. */
  stop(): Promise<void>;
  /** Settles when the loop ends: resolves after stop(), rejects on a non-retriable error. */
  readonly done: Promise<void>;
  status(): ConsumerLoopStatus;
  lag(): ConsumerLag;
}

/**
 * The `/readyz` answer of a consumer-group service: ready while consuming with at most
 * `maxLagMessages` messages behind; paused, starting, failed or lagging is not ready, with the reason.
 * A lag not measured yet (the end offsets are read right after joining) is not ready either: a
 * member starting on a backlog must not look caught up.
 */
export function consumerReadiness(
  status: { status: string; reason?: string | undefined },
  lag: ConsumerLag,
  maxLagMessages: number,
): Exclude<ProbeReport, boolean> {
  if (status.status !== 'consuming')
    return { ok: false, status: status.status, reason: status.reason ?? `not consuming (${status.status})` };
  if (lag.messages === null)
    return { ok: false, status: 'starting', reason: "lag not measured yet: the partitions' end offsets have not been read" };
  if (lag.messages > maxLagMessages)
    return { ok: false, status: 'lagging', reason: `lagging: ${lag.messages} messages behind (max ${maxLagMessages})` };
  return { ok: true, status: 'consuming' };
}

/**
 * The lag of the `owned` partitions: end offset minus next offset to process, summed (a partition
 * without a known position or end offset counts 0), and the age of the oldest held message.
 * `endOffsets` null: not read yet, `messages` null.
 */
export function computeLag(
  owned: readonly number[],
  endOffsets: ReadonlyMap<number, bigint> | null,
  positions: ReadonlyMap<number, bigint>,
  heldSince: ReadonlyMap<number, bigint>,
  nowMs: number,
): ConsumerLag {
  let messages: number | null = null;
  if (endOffsets) {
    let behind = 0n;
    for (const p of owned) {
      const end = endOffsets.get(p);
      const next = positions.get(p);
      if (end !== undefined && next !== undefined && end > next) behind += end - next;
    }
    messages = Number(behind);
  }
  let oldest: bigint | null = null;
  for (const [p, ts] of heldSince) if (owned.includes(p) && (oldest === null || ts < oldest)) oldest = ts;
  const oldestSeconds = oldest === null ? 0 : Math.max(0, (nowMs - Number(oldest)) / 1000);
  return { messages, oldestSeconds, partitions: owned.length };
}

export function createConsumerLoop(options: ConsumerLoopOptions): ConsumerLoop {
  const { kafka, logger, topic } = options;
  const sleep = options.sleep ?? realSleep;
  const random = options.random ?? Math.random;
  const now = options.now ?? Date.now;
  const chunkSize = options.chunkSize ?? 500;
  const concurrency = Math.max(1, options.concurrency ?? 1);
  const maxBackoffMs = options.maxBackoffMs ?? 2000;
  const lagIntervalMs = options.lagIntervalMs ?? 1000;
  const status: ConsumerLoopStatus = { state: 'starting' };
  const committer = createOffsetCommitter({ intervalMs: options.commitIntervalMs ?? 250, logger, now });
  let producer: KafkaProducer | null = null;
  let consumer: KafkaConsumer | null = null;
  let stream: Awaited<ReturnType<KafkaConsumer['consume']>> | null = null;
  let streamError: unknown = null;
  let wake: (() => void) | null = null;
  let stopping = false;
  let running: Promise<void> | null = null;
  let settle: { resolve: () => void; reject: (e: unknown) => void } | null = null;
  const done = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
  // Nobody may be awaiting `done` when it rejects; that must not crash the process.
  done.catch(() => undefined);
  /** Partition -> end offset (high watermark) at the last read; null before the first. */
  let endOffsets: Map<number, bigint> | null = null;
  /** Partition -> offset of the next message to process (last applied + 1, or the first fetched). */
  const positions = new Map<number, bigint>();
  /** Partition -> Kafka timestamp (ms) of its oldest message fetched but not processed yet. */
  const heldSince = new Map<number, bigint>();
  let lagTimer: NodeJS.Timeout | null = null;

  function setPaused(reason: string): void {
    const was = status.state;
    status.state = 'paused';
    status.reason = reason;
    if (was !== 'paused') {
      logger.warn({ reason }, `${options.service} paused: retrying without committing offsets`);
      options.onPausedChange?.(true);
    }
  }

  function setConsuming(): void {
    if (status.state === 'paused') {
      logger.info(`${options.service} resumed`);
      options.onPausedChange?.(false);
    }
    if (status.state === 'paused' || status.state === 'starting') {
      status.state = 'consuming';
      delete status.reason;
    }
  }

  async function untilDone<T>(what: string, work: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      if (stopping) throw new Abandoned(what);
      try {
        const result = await work();
        if (status.state === 'paused') setConsuming();
        return result;
      } catch (err) {
        if (err instanceof Abandoned) throw err;
        const error = toParityError(err);
        if (!error.retriable) throw error;
        options.onRetry?.(error);
        setPaused(`${what}: ${error.message}`);
        await sleep(Math.max(50, backoffDelay(Math.min(attempt, 10), 100, maxBackoffMs, random)));
      }
    }
  }

  async function deadLetter(message: ConsumedMessage, reason: string, stage: string): Promise<void> {
    const headers = new Map<string, Buffer | string>();
    for (const [name, value] of message.headers) if (!name.startsWith('parity.dlq.')) headers.set(name, value);
    headers.set('parity.dlq.origin', `${message.topic}/${message.partition}/${message.offset}`);
    headers.set('parity.dlq.reason', reason.slice(0, 2000));
    headers.set('parity.dlq.stage', stage);
    headers.set('parity.dlq.service', options.service);
    await untilDone('dead-letter', async () => {
      try {
        await producer!.send({
          messages: [
            {
              topic: options.deadLetterTopic,
              ...(message.key !== undefined ? { key: message.key } : {}),
              ...(message.value !== undefined ? { value: message.value } : {}),
              headers,
            },
          ],
        });
      } catch (err) {
        throw kafkaError(err, `cannot write to the dead-letter topic ${options.deadLetterTopic}`);
      }
    });
    logger.warn({ origin: headers.get('parity.dlq.origin'), reason, stage }, 'change event sent to the dead-letter topic');
  }

  const ctx: ChunkContext = {
    untilDone,
    deadLetter,
    get producer() {
      return producer!;
    },
  };

  function commitFn(c: KafkaConsumer) {
    return async (offsets: {
      topics: Array<{ topic: string; partitions: Array<{ partition: number; offset: string; leaderEpoch?: number }> }>;
    }) => {
      await c.commit({
        offsets: offsets.topics.flatMap(({ topic: t, partitions }) =>
          partitions.map((p) => ({ topic: t, partition: p.partition, offset: BigInt(p.offset), leaderEpoch: p.leaderEpoch ?? -1 })),
        ),
      });
    };
  }

  async function connect(): Promise<void> {
    const c = kafka.consumer({
      groupId: options.groupId,
      maxWaitMs: options.fetchMaxWaitMs ?? 100,
      highWaterMark: Math.max(1024, chunkSize * 2),
    });
    c.on('consumer:group:join', (payload) => {
      // Uncommitted offsets of partitions this member lost are dropped: their new owner replays them.
      const assignment = new Map<string, Set<number>>();
      for (const a of payload.assignments ?? []) assignment.set(a.topic, new Set(a.partitions));
      committer.retain(assignment);
      // Positions restart at the first message fetched under the new assignment (a replay from the last commit).
      positions.clear();
      heldSince.clear();
    });
    // The client emits 'error' when rejoining the group failed (e.g. the coordinator is down): the
    // loop then closes this consumer and joins again, as after a failed stream. Without a listener an
    // 'error' event would end the process.
    c.on('error', (err: Error) => {
      if (c !== consumer) return;
      streamError ??= err;
      wake?.();
    });
    consumer = c;
    streamError = null;
    const s = await c.consume({
      topics: [topic],
      mode: 'committed',
      fallbackMode: options.fromBeginning ? 'earliest' : 'latest',
      autocommit: false,
    });
    s.on('error', (err) => {
      streamError = err;
      wake?.();
    });
    s.on('readable', () => wake?.());
    s.on('close', () => wake?.());
    stream = s;
  }

  function currentLag(): ConsumerLag {
    const owned = consumer?.assignments?.find((a) => a.topic === topic)?.partitions ?? [];
    return computeLag(owned, endOffsets, positions, heldSince, now());
  }

  /** Reads the topic's end offsets (one request at a time, then waits `lagIntervalMs`; the first at once). */
  function scheduleLagRead(delayMs = lagIntervalMs): void {
    if (lagIntervalMs <= 0 || stopping) return;
    lagTimer = setTimeout(() => {
      const c = consumer;
      if (!c || stopping) return scheduleLagRead();
      readLag(c)
        .then(() => options.onLag?.(currentLag()))
        // A failed read keeps the last end offsets; the consumer stream reports a broken connection itself.
        .catch((err: unknown) => logger.debug({ err: (err as Error).message }, 'cannot read the end offsets for the lag'))
        .finally(() => scheduleLagRead());
    }, delayMs);
    lagTimer.unref();
  }

  /**
   * Reads the end offsets and, for owned partitions nothing was fetched from yet, where the group
   * will start (its committed offset, else the log start or end per `fromBeginning`), so a member
   * joining on a backlog counts it before its first fetch arrives.
   */
  async function readLag(c: KafkaConsumer): Promise<void> {
    const owned = c.assignments?.find((a) => a.topic === topic)?.partitions ?? [];
    const unknown = owned.filter((p) => !positions.has(p));
    const [ends, committed] = await Promise.all([
      c.listOffsets({ topics: [topic] }),
      unknown.length > 0 ? c.listCommittedOffsets({ topics: [{ topic, partitions: unknown }] }) : null,
    ]);
    const starts = committed?.get(topic) ?? [];
    const uncommitted = unknown.filter((p) => (starts[p] ?? -1n) < 0n);
    const earliest =
      uncommitted.length > 0 && options.fromBeginning
        ? (await c.listOffsets({ topics: [topic], timestamp: ListOffsetTimestamps.EARLIEST })).get(topic)
        : undefined;
    const endList = ends.get(topic) ?? [];
    for (const p of unknown) {
      // A fetch that arrived meanwhile knows better.
      if (positions.has(p)) continue;
      const start = (starts[p] ?? -1n) >= 0n ? starts[p] : options.fromBeginning ? earliest?.[p] : endList[p];
      if (start !== undefined) positions.set(p, start);
    }
    const map = new Map<number, bigint>();
    endList.forEach((end, partition) => map.set(partition, end));
    endOffsets = map;
  }

  async function disconnect(): Promise<void> {
    const s = stream;
    const c = consumer;
    stream = null;
    consumer = null;
    await s?.close().catch(() => undefined);
    await c?.close(true).catch(() => undefined);
  }

  /** Up to `max` buffered messages; waits for some. Null when the stream failed or closed. */
  async function take(max: number): Promise<ConsumedMessage[] | null> {
    for (;;) {
      const s = stream;
      if (!s || stopping || streamError) return null;
      const out: ConsumedMessage[] = [];
      let m: ConsumedMessage | null;
      while (out.length < max && (m = s.read() as ConsumedMessage | null) !== null) out.push(m);
      if (out.length > 0) return out;
      if (s.destroyed || s.readableEnded) return null;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
      wake = null;
    }
  }

  function chunksOf(messages: ConsumedMessage[]): PartitionChunk[] {
    const byPartition = new Map<string, PartitionChunk>();
    const chunks: PartitionChunk[] = [];
    for (const m of messages) {
      const k = `${m.topic}\u0000${m.partition}`;
      let c = byPartition.get(k);
      if (!c || c.messages.length >= chunkSize) {
        c = { topic: m.topic, partition: m.partition, messages: [] };
        byPartition.set(k, c);
        chunks.push(c);
      }
      c.messages.push(m);
    }
    return chunks;
  }

  /** Whether this member still owns `partition` (messages fetched before a rebalance may still arrive). */
  function owns(topicName: string, partition: number): boolean {
    const assignments = consumer?.assignments;
    if (!assignments) return true;
    return assignments.some((a) => a.topic === topicName && a.partitions.includes(partition));
  }

  /** Handles a partition's chunks in order; each applied chunk's offset goes to the committer. */
  async function handleInOrder(chunks: PartitionChunk[], commit: ReturnType<typeof commitFn>): Promise<void> {
    for (const [i, chunk] of chunks.entries()) {
      await untilDone(`${chunk.topic}/${chunk.partition}`, () => options.handle(chunk, ctx));
      const last = chunk.messages[chunk.messages.length - 1]!;
      positions.set(chunk.partition, last.offset + 1n);
      const next = chunks[i + 1];
      if (next) heldSince.set(chunk.partition, next.messages[0]!.timestamp);
      else heldSince.delete(chunk.partition);
      options.onLag?.(currentLag());
      // A partition that moved to another member is not committed from here: its new owner replays
      // from the last commit, and a late commit from here could move its position backwards.
      if (!owns(chunk.topic, chunk.partition)) continue;
      committer.confirmed(
        { topic: chunk.topic, partition: chunk.partition, offset: (last.offset + 1n).toString(), leaderEpoch: last.leaderEpoch },
        commit,
      );
    }
  }

  async function run(): Promise<void> {
    let failures = 0;
    while (!stopping) {
      const messages = await take(chunkSize * concurrency);
      if (messages === null) {
        if (stopping) break;
        // The stream failed (a broker went away, the group coordinator moved) or ended: join again.
        const error = kafkaError(streamError ?? new Error('the consumer stream ended'), `consumer of ${topic}`);
        if (!error.retriable) throw error;
        options.onRetry?.(error);
        setPaused(`consuming ${topic}: ${error.message}`);
        await committer.flush();
        await disconnect();
        await sleep(Math.max(100, backoffDelay(Math.min(failures++, 10), 250, maxBackoffMs * 2, random)));
        if (stopping) break;
        try {
          await connect();
          failures = 0;
        } catch (err) {
          const e = kafkaError(err, `cannot rejoin the consumer group ${options.groupId}`);
          if (!e.retriable) throw e;
          streamError = e;
        }
        continue;
      }
      const commit = commitFn(consumer!);
      const byPartition = new Map<string, PartitionChunk[]>();
      for (const c of chunksOf(messages)) {
        const k = `${c.topic}\u0000${c.partition}`;
        const list = byPartition.get(k);
        if (list) list.push(c);
        else byPartition.set(k, [c]);
      }
      const lanes = [...byPartition.values()];
      for (const [first] of lanes) {
        const head = first!.messages[0]!;
        // A partition's position is known from its first fetched message on; a replay moves it back.
        const known = positions.get(head.partition);
        if (known === undefined || head.offset < known) positions.set(head.partition, head.offset);
        heldSince.set(head.partition, head.timestamp);
      }
      // Partitions in parallel (at most `concurrency` at once); each partition's chunks in order.
      for (let i = 0; i < lanes.length; i += concurrency) {
        await Promise.all(lanes.slice(i, i + concurrency).map((chunks) => handleInOrder(chunks, commit)));
      }
      if (status.state === 'starting') setConsuming();
    }
  }

  function fail(err: ParityError): void {
    if (status.state === 'failed') return;
    status.state = 'failed';
    status.reason = err.message;
    logger.error({ code: err.code, err: err.message }, `${options.service} stopped on a non-retriable error`);
    void shutdown().finally(() => settle?.reject(err));
  }

  async function shutdown(): Promise<void> {
    stopping = true;
    if (lagTimer) clearTimeout(lagTimer);
    wake?.();
    await running?.catch(() => undefined);
    await committer.flush();
    await disconnect();
    const p = producer;
    producer = null;
    await p?.close().catch(() => undefined);
  }

  return {
    done,
    async start() {
      const existing = await listTopics(kafka);
      if (!existing.has(topic))
        throw new ParityError('PARITY_BAD_INPUT', `topic ${topic} does not exist`, { hint: options.missingTopicHint });
      const missing = [options.deadLetterTopic, ...(options.extraTopics ?? [])].filter((t) => !existing.has(t));
      await ensureTopics(kafka, missing, 1);
      producer = kafka.producer({ clientId: `${kafka.clientId}-${options.service}` });
      try {
        await producer.initIdempotentProducer({});
        await connect();
      } catch (err) {
        await shutdown();
        throw kafkaError(err, `cannot start consuming ${topic}`);
      }
      status.state = 'consuming';
      logger.info({ topic, groupId: options.groupId }, `${options.service} consuming`);
      scheduleLagRead(0);
      running = run().catch((err: unknown) => {
        if (err instanceof Abandoned) return;
        fail(toParityError(err));
      });
    },
    async stop() {
      if (status.state !== 'failed') status.state = 'stopped';
      await shutdown();
      settle?.resolve();
    },
    status: () => ({ ...status }),
    lag: currentLag,
  };
}
