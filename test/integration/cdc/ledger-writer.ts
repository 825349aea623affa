/**
 * The writer of the CDC fault tests (no-loss, leader failover): commits a known history per key
 * (sequence numbers) into `ledger (id bigint PRIMARY KEY, seq int, writer int, pad text)` through every
 * kind of write: single-row and multi-row INSERT, client-side COPY, big transactions, updates, primary-key
 * updates and deletes. `history` records each key's committed steps, in commit order, for the checker
 * (`checkLedger`) that compares them with what the topic holds.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { DecodedChange } from '../../../connectors/kafka-sink/serde.js';
import { comparePositions, encodePosition, type Position } from '../../../services/core/lsn.js';

export const PAD = 'p'.repeat(120);

export type Step = { op: 'c' | 'u' | 'd'; seq: number | null };

const rand = (n: number) => Math.floor(Math.random() * n);

export class Writer {
  readonly live = new Map<string, number>();
  private nextId: bigint;
  private paused = false;
  private pauseAck: (() => void) | null = null;
  private resumeWait: Promise<void> | null = null;
  private resume: (() => void) | null = null;
  private failure: unknown = null;
  ops = 0;

  constructor(
    readonly index: number,
    private readonly client: pg.Client,
    private readonly url: string,
    private readonly history: Map<string, Step[]>,
  ) {
    this.nextId = BigInt(index + 1) * 1_000_000_000n;
  }

  private record(id: string, step: Step): void {
    let h = this.history.get(id);
    if (!h) this.history.set(id, (h = []));
    h.push(step);
  }

  private newIds(n: number): string[] {
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push(String(this.nextId++));
    return out;
  }

  private pick(n: number): string[] {
    const keys = [...this.live.keys()];
    const out = new Set<string>();
    while (out.size < Math.min(n, keys.length)) out.add(keys[rand(keys.length)]!);
    return [...out];
  }

  /**
   * Runs steps until `stopped()` says so. A step that throws ends the loop with its error, and a
   * pause waiting for this writer then fails with it instead of waiting forever.
   */
  async run(stopped: () => boolean): Promise<void> {
    try {
      while (!stopped()) await this.step();
    } catch (err) {
      this.failure = err;
      this.pauseAck?.();
      throw err;
    }
  }

  /** Waits at a safe point (no open transaction) until resumed; used around TRUNCATE. */
  async pauseAtSafePoint(): Promise<void> {
    if (this.failure) throw this.failure;
    this.resumeWait = new Promise((r) => (this.resume = r));
    await new Promise<void>((r) => {
      this.pauseAck = r;
      this.paused = true;
    });
    if (this.failure) throw this.failure;
  }

  release(): void {
    this.paused = false;
    this.resume?.();
  }

  async bigTransaction(rows: number): Promise<void> {
    const first = this.nextId;
    this.nextId += BigInt(rows);
    await this.client.query(
      `INSERT INTO ledger (id, seq, writer, pad) SELECT $1::bigint + g, 1, $2, $3 FROM generate_series(0, $4 - 1) g`,
      [first.toString(), this.index, PAD, rows],
    );
    for (let i = 0n; i < BigInt(rows); i++) {
      const id = String(first + i);
      this.live.set(id, 1);
      this.record(id, { op: 'c', seq: 1 });
    }
  }

  private async copy(ids: string[]): Promise<void> {
    // Client-side COPY through psql's \copy, the way a bulk loader would write.
    const child = spawn('psql', [this.url, '-v', 'ON_ERROR_STOP=1', '-qc', '\\copy ledger (id, seq, writer, pad) FROM STDIN'], {
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.stdin.end(ids.map((id) => `${id}\t1\t${this.index}\t${PAD}\n`).join(''));
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    if (code !== 0) throw new Error(`psql \\copy failed: ${err}`);
    for (const id of ids) {
      this.live.set(id, 1);
      this.record(id, { op: 'c', seq: 1 });
    }
  }

  async step(): Promise<void> {
    if (this.paused) {
      this.pauseAck?.();
      this.pauseAck = null;
      await this.resumeWait;
    }
    const r = rand(100);
    const c = this.client;
    if (r < 20 || this.live.size < 10) {
      const [id] = this.newIds(1);
      await c.query('INSERT INTO ledger (id, seq, writer, pad) VALUES ($1, 1, $2, $3)', [id, this.index, PAD]);
      this.live.set(id!, 1);
      this.record(id!, { op: 'c', seq: 1 });
    } else if (r < 35) {
      const ids = this.newIds(10);
      await c.query(`INSERT INTO ledger (id, seq, writer, pad) SELECT unnest($1::bigint[]), 1, $2, $3`, [ids, this.index, PAD]);
      for (const id of ids) {
        this.live.set(id, 1);
        this.record(id, { op: 'c', seq: 1 });
      }
    } else if (r < 38) {
      await this.copy(this.newIds(50));
    } else if (r < 70) {
      const ids = this.pick(1 + rand(5));
      await c.query('BEGIN');
      for (const id of ids) await c.query('UPDATE ledger SET seq = seq + 1 WHERE id = $1', [id]);
      await c.query('COMMIT');
      for (const id of ids) {
        const seq = this.live.get(id)! + 1;
        this.live.set(id, seq);
        this.record(id, { op: 'u', seq });
      }
    } else if (r < 82) {
      const [old] = this.pick(1);
      const [fresh] = this.newIds(1);
      await c.query('UPDATE ledger SET id = $2, seq = seq + 1 WHERE id = $1', [old, fresh]);
      const seq = this.live.get(old!)! + 1;
      this.live.delete(old!);
      this.live.set(fresh!, seq);
      this.record(old!, { op: 'd', seq: null });
      this.record(fresh!, { op: 'c', seq });
    } else {
      const [id] = this.pick(1);
      await c.query('DELETE FROM ledger WHERE id = $1', [id]);
      this.live.delete(id!);
      this.record(id!, { op: 'd', seq: null });
    }
    this.ops++;
  }
}

/** One event read back from the topic, as the ledger checker needs it. */
export interface LedgerEvent {
  partition: number;
  /** The dedupe key (commit LSN, ordinal) as text, and its parsed form for ordering. */
  pos: string;
  position: Position;
  key: string | null;
  op: string;
  seq: number | null;
  /** A digest of the event's content: two copies of one change must carry the same. */
  digest: string;
}

export function ledgerEvent(d: DecodedChange): LedgerEvent {
  const after = d.envelope.after as { seq?: number } | null;
  return {
    partition: d.partition,
    pos: encodePosition(d.position),
    position: d.position,
    key: d.key ? String(d.key.id) : null,
    op: d.envelope.op,
    seq: after?.seq ?? null,
    digest: createHash('sha1')
      .update(JSON.stringify([d.key, d.envelope.op, d.envelope.before, d.envelope.after, d.envelope.source.sequence]))
      .digest('hex'),
  };
}

export interface LedgerVerdict {
  committed: number;
  distinct: number;
  duplicates: number;
  /** Keys whose committed changes never reached the topic. */
  missing: string[];
  /** Keys whose events differ from their committed history (order or content). */
  wrong: string[];
  /** Keys on the topic that were never committed. */
  extra: string[];
  /** Violations of per-partition order, key placement, or duplicates that differ from their first copy. */
  violations: string[];
}

/**
 * Checks events read back (in partition order) against the writers' committed history (no TRUNCATE):
 * keeping each dedupe key's first occurrence, positions rise strictly within a partition and each
 * key's events equal its committed steps, in order, in one partition; every repeated dedupe key
 * carries an identical event.
 */
export function checkLedger(history: Map<string, Step[]>, events: LedgerEvent[]): LedgerVerdict {
  const byPartition = new Map<number, LedgerEvent[]>();
  for (const e of events) {
    let list = byPartition.get(e.partition);
    if (!list) byPartition.set(e.partition, (list = []));
    list.push(e);
  }
  const firstDigest = new Map<string, string>();
  const keyPartition = new Map<string, number>();
  const got = new Map<string, Step[]>();
  const violations: string[] = [];
  let duplicates = 0;
  for (const [partition, list] of byPartition) {
    let last: Position | null = null;
    for (const e of list) {
      const prior = firstDigest.get(e.pos);
      if (prior !== undefined) {
        duplicates++;
        if (prior !== e.digest) violations.push(`duplicate ${e.pos} differs from its first copy`);
        continue;
      }
      firstDigest.set(e.pos, e.digest);
      if (last && comparePositions(e.position, last) <= 0) violations.push(`partition ${partition}: ${e.pos} after a later position`);
      last = e.position;
      const key = e.key ?? '(none)';
      const p = keyPartition.get(key);
      if (p === undefined) keyPartition.set(key, partition);
      else if (p !== partition) violations.push(`key ${key} in partitions ${p} and ${partition}`);
      let h = got.get(key);
      if (!h) got.set(key, (h = []));
      h.push({ op: e.op as Step['op'], seq: e.op === 'd' ? null : e.seq });
    }
  }
  const missing: string[] = [];
  const wrong: string[] = [];
  for (const [key, steps] of history) {
    const g = got.get(key);
    if (!g) missing.push(key);
    else if (JSON.stringify(g) !== JSON.stringify(steps))
      wrong.push(`${key}: committed ${JSON.stringify(steps)} kafka ${JSON.stringify(g)}`);
  }
  return {
    committed: [...history.values()].reduce((n, h) => n + h.length, 0),
    distinct: firstDigest.size,
    duplicates,
    missing,
    wrong,
    extra: [...got.keys()].filter((k) => !history.has(k)),
    violations,
  };
}
