/**
 * On-demand re-snapshot of one table while streaming continues, without locks: the watermark method of
 * Netflix's DBLog (Debezium's incremental snapshots). Per chunk:
 *
 * 1. register the chunk's window, then write a LOW watermark into the WAL
 *    (`pg_logical_emit_message(true, 'parity.watermark', ...)`, a transactional message: no table needed);
 * 2. wait until the stream has seen LOW and every transaction it decoded before LOW is visible to a new
 *    snapshot (PostgreSQL writes a commit record a moment before the transaction becomes visible, so a
 *    read right after LOW could miss a change the stream already passed: the chunk would then carry an
 *    older row than the stream and, emitted at HIGH, overwrite it; see visibility.ts);
 * 3. read the next primary-key-ordered chunk (plain READ COMMITTED) into memory;
 * 4. write a HIGH watermark.
 *
 * The stream sees LOW, then the changes committed around the read, then HIGH. Every change to a key of
 * the window's table seen between LOW and HIGH evicts that key from the chunk: the stream already
 * carries a value at least as new. At HIGH the surviving rows are emitted as `op: r` events
 * (`source.snapshot = incremental`) inside the HIGH transaction, before anything committed later, so
 * each key's events stay in commit order. Progress (the chunk's last key) is checkpointed once the
 * HIGH transaction is durable in Kafka, so a restarted connector resumes at the next chunk.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { Logger } from '../../services/core/log.js';
import { sleep } from '../../services/core/retry.js';
import { type RelationState, keyText } from './change-builder.js';
import { type Chunk, readChunk } from './snapshot.js';
import { waitUntilVisible } from './visibility.js';
import { type SnapshotRequest, nextSnapshotRequest, updateSnapshotRequest } from './snapshot-store.js';

type Queryable = Pick<pg.ClientBase, 'query'>;

export const WATERMARK_PREFIX = 'parity.watermark';

interface WatermarkContent {
  slot: string;
  window: string;
  mark: 'low' | 'high';
}

interface Window {
  id: string;
  table: string;
  relation: RelationState;
  open: boolean;
  evicted: Set<string>;
  truncated: boolean;
  rows: Chunk['rows'] | null;
  /** Resolved when the stream reaches LOW, with the xids of the transactions it committed just before. */
  low: { seen: Promise<number[]>; resolve: (xids: number[]) => void };
  settle: { resolve: (emitted: number) => void; reject: (err: unknown) => void };
}

/** What the stream must emit at a HIGH watermark. */
export interface ChunkEmission {
  relation: RelationState;
  rows: Chunk['rows'];
  /** Call once the HIGH watermark's transaction is durable. */
  durable: () => void;
}

export interface IncrementalSnapshotterOptions {
  /** Source database: watermarks and chunk reads. */
  source: Queryable;
  /** Control database: requests and checkpoints. */
  control: Queryable;
  controlSchema: string;
  slot: string;
  logger: Logger;
  /** The current RelationState of "schema.table" (from the stream, else the catalog). */
  relationFor: (table: string) => Promise<RelationState>;
  pollMs?: number;
  /** Give up waiting for a chunk's HIGH watermark after this long (the stream may be paused). */
  chunkTimeoutMs?: number;
  onRows?: (table: string, rows: number) => void;
}

/**
 * How many of the stream's latest committed transactions are remembered for the visibility wait. A
 * transaction that is still invisible when the stream reaches LOW committed within the last moments;
 * thousands of commits after it in that moment would be needed to push it out.
 */
const RECENT_XIDS = 4096;

export class IncrementalSnapshotter {
  private readonly windows = new Map<string, Window>();
  private readonly recent = new Uint32Array(RECENT_XIDS);
  private recentCount = 0;
  /** Windows of the current process only: a replayed watermark of an earlier run is ignored. */
  private readonly nonce = randomUUID();
  private seq = 0;
  private active: SnapshotRequest | null = null;

  constructor(private readonly options: IncrementalSnapshotterOptions) {}

  /** The request being worked on, for status. */
  get current(): SnapshotRequest | null {
    return this.active;
  }

  /** Stream hook, for every change in stream order: evicts the key from open windows of its table. */
  onChange(table: string, key: Record<string, unknown> | null, truncate = false): void {
    if (this.windows.size === 0) return;
    for (const w of this.windows.values()) {
      if (!w.open || w.table !== table) continue;
      if (truncate) w.truncated = true;
      else if (key) w.evicted.add(keyText(key));
    }
  }

  /** Stream hook, for every transaction's commit in stream order. */
  onCommitted(xid: number): void {
    this.recent[this.recentCount++ % RECENT_XIDS] = xid;
  }

  /**
   * Stream hook for a `parity.watermark` message. Returns the rows to emit at a HIGH watermark of one of
   * this process's windows, else null.
   */
  onWatermark(content: Uint8Array): ChunkEmission | null {
    let parsed: WatermarkContent;
    try {
      parsed = JSON.parse(Buffer.from(content).toString('utf8')) as WatermarkContent;
    } catch {
      return null;
    }
    if (parsed.slot !== this.options.slot) return null;
    const w = this.windows.get(parsed.window);
    if (!w) return null;
    if (parsed.mark === 'low') {
      w.open = true;
      w.low.resolve(Array.from(this.recent.subarray(0, Math.min(this.recentCount, RECENT_XIDS))));
      return null;
    }
    this.windows.delete(w.id);
    const rows = w.truncated || !w.rows ? [] : w.rows.filter((r) => !w.evicted.has(keyText(r.key)));
    return { relation: w.relation, rows, durable: () => w.settle.resolve(rows.length) };
  }

  /** The stream session ended: pending windows can no longer complete; their chunks are redone. */
  reset(reason: unknown): void {
    for (const w of this.windows.values()) w.settle.reject(reason);
    this.windows.clear();
  }

  /** Works through queued requests until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const pollMs = this.options.pollMs ?? 1_000;
    while (!signal.aborted) {
      let request: SnapshotRequest | null = null;
      try {
        request = await nextSnapshotRequest(this.options.control, this.options.controlSchema, this.options.slot);
        if (request) await this.work(request, signal);
      } catch (err) {
        if (signal.aborted) break;
        this.options.logger.warn({ err: (err as Error).message, request: request?.id }, 'incremental snapshot chunk failed; retrying');
      }
      if (!request || !signal.aborted) await sleep(request ? 200 : pollMs);
    }
    this.reset(new Error('stopped'));
  }

  private async work(request: SnapshotRequest, signal: AbortSignal): Promise<void> {
    const { control, controlSchema } = this.options;
    this.active = request;
    if (request.state === 'queued') {
      await updateSnapshotRequest(control, controlSchema, request.id, { state: 'running' });
      this.options.logger.info({ request: request.id, table: request.tableName, reason: request.reason }, 'incremental snapshot started');
    }
    let lastKey = request.lastKey;
    while (!signal.aborted) {
      const relation = await this.options.relationFor(request.tableName);
      const id = `${this.nonce}:${request.id}:${++this.seq}`;
      let settle!: Window['settle'];
      let lowSeen!: (xids: number[]) => void;
      const seen = new Promise<number[]>((resolve) => (lowSeen = resolve));
      const completed = new Promise<number>((resolve, reject) => (settle = { resolve, reject }));
      // A session reset may reject it before it is awaited below; that rejection is handled there.
      completed.catch(() => undefined);
      const window: Window = {
        id,
        table: request.tableName,
        relation,
        open: false,
        evicted: new Set(),
        truncated: false,
        rows: null,
        low: { seen, resolve: lowSeen },
        settle,
      };
      // Registered before the LOW watermark is written, so the stream can never see LOW unannounced.
      this.windows.set(id, window);
      let chunk: Chunk;
      try {
        await this.watermark(id, 'low');
        const before = await withTimeout(
          // (a session reset rejects `completed`, which ends the wait too)
          Promise.race([seen, completed.then((): number[] => [])]),
          this.options.chunkTimeoutMs ?? 600_000,
          `chunk ${id} did not reach its low watermark`,
        );
        await waitUntilVisible(this.options.source, before);
        chunk = await readChunk(this.options.source, relation, lastKey, request.chunkRows);
        window.rows = chunk.rows;
        await this.watermark(id, 'high');
      } catch (err) {
        this.windows.delete(id);
        throw err;
      }
      const emitted = await withTimeout(completed, this.options.chunkTimeoutMs ?? 600_000, `chunk ${id} did not reach its high watermark`);
      const done = chunk.rows.length < request.chunkRows || relation.keyColumns.length === 0;
      if (chunk.lastKey) lastKey = chunk.lastKey;
      await updateSnapshotRequest(control, controlSchema, request.id, {
        lastKey,
        addRows: emitted,
        addChunks: 1,
        ...(done ? { state: 'done' as const } : {}),
      });
      this.options.onRows?.(request.tableName, emitted);
      if (done) {
        this.options.logger.info({ request: request.id, table: request.tableName }, 'incremental snapshot done');
        this.active = null;
        return;
      }
    }
  }

  private async watermark(window: string, mark: 'low' | 'high'): Promise<void> {
    const content: WatermarkContent = { slot: this.options.slot, window, mark };
    await this.options.source.query('SELECT pg_catalog.pg_logical_emit_message(true, $1, $2)', [WATERMARK_PREFIX, JSON.stringify(content)]);
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
