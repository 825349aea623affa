/**
 * Topic administration and one-off reads every parity service shares, on @platformatic/kafka's
 * public Admin and Consumer API: create topics and wait for their leaders, partition counts, offset
 * ranges, and reading a range of a topic without committing anything.
 */
import { randomBytes } from 'node:crypto';
import { ListOffsetTimestamps, type Admin } from '@platformatic/kafka';
import type { ConsumedMessage, KafkaClients } from '../../services/core/clients.js';
import { kafkaError } from '../../services/core/kafka-errors.js';
import type { Logger } from '../../services/core/log.js';

/** Runs `fn` with a fresh admin client, always closed afterwards. */
export async function withAdmin<T>(kafka: KafkaClients, fn: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = kafka.admin();
  try {
    return await fn(admin);
  } finally {
    await admin.close().catch(() => undefined);
  }
}

/** The names of the cluster's topics (internal ones left out). */
export async function listTopics(kafka: KafkaClients): Promise<Set<string>> {
  try {
    return new Set(await withAdmin(kafka, (admin) => admin.listTopics()));
  } catch (err) {
    throw kafkaError(err, 'cannot list the Kafka topics');
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function alreadyExists(err: unknown): boolean {
  const seen = new Set<unknown>();
  const visit = (e: unknown): boolean => {
    if (!e || typeof e !== 'object' || seen.has(e)) return false;
    seen.add(e);
    const o = e as { apiId?: unknown; message?: unknown; errors?: unknown; cause?: unknown };
    if (o.apiId === 'TOPIC_ALREADY_EXISTS' || (typeof o.message === 'string' && /already exists/i.test(o.message))) return true;
    return (Array.isArray(o.errors) && o.errors.some(visit)) || visit(o.cause);
  };
  return visit(err);
}

/**
 * Creates the missing ones of `topics` with `partitions` partitions and the broker's default
 * replication factor (existing topics are left as they are), then waits until every partition of
 * every topic has a leader, so a producer or consumer started next finds them.
 */
export async function ensureTopics(kafka: KafkaClients, topics: readonly string[], partitions: number, timeoutMs = 30_000): Promise<void> {
  if (topics.length === 0) return;
  try {
    await withAdmin(kafka, async (admin) => {
      const existing = new Set(await admin.listTopics());
      const missing = topics.filter((t) => !existing.has(t));
      for (const topic of missing) {
        try {
          await admin.createTopics({ topics: [topic], partitions, replicas: -1 });
        } catch (err) {
          // A concurrent creator won the race: fine.
          if (!alreadyExists(err)) throw err;
        }
      }
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const meta = await admin.metadata({ topics: [...topics], forceUpdate: true });
        const waiting = topics.filter((t) => {
          const m = meta.topics.get(t);
          return !m || m.partitions.length === 0 || m.partitions.some((p) => p === undefined || p.leader < 0);
        });
        if (waiting.length === 0) return;
        if (Date.now() > deadline) throw new Error(`no leader after ${timeoutMs} ms for ${waiting.join(', ')}`);
        await sleep(100);
      }
    });
  } catch (err) {
    // The broker address matters when a setting is wrong (kafka.security): the client's own message lacks it.
    throw kafkaError(err, `cannot create topics ${topics.join(', ')} on ${kafka.brokers.join(',')}`);
  }
}

/** Partition counts of `topics` (topics Kafka does not know are left out). */
export async function partitionCounts(kafka: KafkaClients, topics: readonly string[]): Promise<Map<string, number>> {
  try {
    return await withAdmin(kafka, async (admin) => {
      const existing = new Set(await admin.listTopics());
      const known = topics.filter((t) => existing.has(t));
      if (known.length === 0) return new Map();
      const meta = await admin.metadata({ topics: known, forceUpdate: true });
      return new Map(known.map((t) => [t, meta.topics.get(t)?.partitionsCount ?? 0]));
    });
  } catch (err) {
    throw kafkaError(err, `cannot read metadata of ${topics.join(', ')}`);
  }
}

/** One partition's offsets: `low` is the first retained, `high` the next to be written. */
export interface PartitionOffsets {
  partition: number;
  low: bigint;
  high: bigint;
}

/** The low and high watermarks of every partition of `topic`, in partition order. */
export async function topicOffsets(kafka: KafkaClients, topic: string): Promise<PartitionOffsets[]> {
  try {
    return await withAdmin(kafka, async (admin) => {
      const meta = await admin.metadata({ topics: [topic], forceUpdate: true });
      const count = meta.topics.get(topic)?.partitionsCount ?? 0;
      const ask = async (timestamp: bigint) => {
        const partitions = Array.from({ length: count }, (_, partitionIndex) => ({ partitionIndex, timestamp }));
        const [listed] = await admin.listOffsets({ topics: [{ name: topic, partitions }] });
        return new Map((listed?.partitions ?? []).map((p) => [p.partitionIndex, p.offset]));
      };
      const low = await ask(ListOffsetTimestamps.EARLIEST);
      const high = await ask(ListOffsetTimestamps.LATEST);
      return Array.from({ length: count }, (_, partition) => ({
        partition,
        low: low.get(partition) ?? 0n,
        high: high.get(partition) ?? 0n,
      }));
    });
  } catch (err) {
    throw kafkaError(err, `cannot read the offsets of ${topic}`);
  }
}

export interface ReadRangeOptions {
  /** Give up after this long; the result then says `complete: false`. Default 30 s. */
  timeoutMs?: number;
  logger?: Logger;
}

/**
 * Reads `[start, end)` of each given partition of `topic`, calling `onMessage` in offset order per
 * partition, through a throw-away consumer group that commits nothing and is deleted afterwards.
 * Resolves `complete: false` if the timeout came first.
 */
export async function readRange(
  kafka: KafkaClients,
  topic: string,
  ranges: ReadonlyMap<number, { start: bigint; end: bigint }>,
  onMessage: (message: ConsumedMessage) => void | Promise<void>,
  options: ReadRangeOptions = {},
): Promise<{ complete: boolean }> {
  const remaining = new Set([...ranges].filter(([, r]) => r.end > r.start).map(([p]) => p));
  if (remaining.size === 0) return { complete: true };
  const groupId = `parity-read-${randomBytes(6).toString('hex')}`;
  const consumer = kafka.consumer({ groupId, maxWaitMs: 100 });
  let groupError: Error | null = null;
  let closeStream: (() => void) | null = null;
  // A failed group rejoin is emitted as 'error' (unhandled, it would end the process): stop reading.
  consumer.on('error', (err: Error) => {
    groupError ??= err;
    closeStream?.();
  });
  const offsets = [...ranges].map(([partition, r]) => ({ topic, partition, offset: r.start }));
  let complete = false;
  try {
    const stream = await consumer.consume({ topics: [topic], mode: 'manual', offsets, autocommit: false });
    closeStream = () => void stream.close();
    // A range may end in transaction markers, which are never delivered as messages: the next offset
    // to fetch tells when a partition is read to its end.
    const finished = (): boolean => {
      for (const p of [...remaining]) {
        const next = stream.offsetsToFetch.get(`${topic}:${p}`);
        if (next !== undefined && next >= ranges.get(p)!.end) remaining.delete(p);
      }
      return remaining.size === 0;
    };
    const timer = setTimeout(() => {
      options.logger?.warn({ topic, partitions: [...remaining] }, 'reading the topic timed out before the end of every partition');
      void stream.close();
    }, options.timeoutMs ?? 30_000);
    timer.unref();
    const onFetch = () => {
      if (finished() && stream.readableLength === 0) void stream.close();
    };
    stream.on('fetch', onFetch);
    try {
      for await (const message of stream) {
        const range = ranges.get(message.partition);
        if (range && message.offset >= range.start && message.offset < range.end) await onMessage(message);
        if (finished() && stream.readableLength === 0) break;
      }
      complete = finished();
      if (groupError) throw groupError;
    } finally {
      clearTimeout(timer);
      stream.off('fetch', onFetch);
      await stream.close().catch(() => undefined);
    }
  } catch (err) {
    throw kafkaError(err, `cannot read ${topic}`);
  } finally {
    await consumer.close(true).catch(() => undefined);
    // The group committed nothing; removing it keeps the cluster's group list clean.
    await withAdmin(kafka, (admin) => admin.deleteGroups({ groups: [groupId] })).catch((err: unknown) => {
      options.logger?.warn({ groupId, err: (err as Error).message }, 'could not delete the read-only consumer group');
    });
  }
  return { complete };
}

/** Reads every message of `topic` written before the call, from its first retained offset. */
export async function readTopic(
  kafka: KafkaClients,
  topic: string,
  onMessage: (message: ConsumedMessage) => void | Promise<void>,
  options: ReadRangeOptions = {},
): Promise<{ complete: boolean }> {
  const offsets = await topicOffsets(kafka, topic);
  return readRange(kafka, topic, new Map(offsets.map((o) => [o.partition, { start: o.low, end: o.high }])), onMessage, options);
}
