/**
 * Reverse sync: during the cutover window, every change of the new representation is applied to the
 * old one with the spec's reverse mapping, so a rollback is a flag flip that loses nothing.
 *
 * - Source of changes: its own logical slot on the new representation's table (same table: the
 *   table itself; shadow table: the shadow table; cross-database: the target table, in the target
 *   database), created by `parity cutover` before writes move. The old side is always the source database.
 * - No echo: the apply session runs under a replication origin; PostgreSQL stamps its transactions
 *   with it, pgoutput sends the origin, and those transactions are dropped (changes.ts). Writes of the
 *   forward path (dual writes, repairs) do come through; they are no-ops, because the apply makes the
 *   old row equal reverse(new) and the forward path made new = mapping(old), and
 *   `parity spec check-roundtrip` proves reverse(mapping(row)) = row.
 * - Fenced and conditional: each batch runs in one transaction that checks the reverse fencing token
 *   and that the window is still open (FOR SHARE: the contract's close waits for it), writes only rows
 *   that differ, and advances the applied position `(commit LSN, ordinal)` in the same transaction.
 *   Only then is the slot confirmed, so a crash replays, and a replay at or below the position is skipped.
 */
import { hostname } from 'node:os';
import type pg from 'pg';
import { assertFence, currentToken, issueToken } from '../core/fence.js';
import { ParityError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { type Lsn, formatLsn } from '../core/lsn.js';
import type { Registry } from '../core/metrics.js';
import { startStatusServer, type StatusServer } from '../core/http.js';
import type { Spec } from '../core/spec.js';
import { ReplicationStream } from '../../connectors/postgres-source/replication-stream.js';
import { dropSlotAndPublication, slotInfo, slotLag } from '../../connectors/postgres-source/slot.js';
import { waitUntilVisible } from '../../connectors/postgres-source/visibility.js';
import { type ApplyStatements, type CrossDatabaseStatements, applyStatements, crossDatabaseStatements } from './apply-sql.js';
import { type CommittedTransaction, ChangeReader } from './changes.js';
import { reverseMetrics, type ReverseMetrics } from './metrics.js';
import { FLIP_PREFIX, assertWindowKind, reverseOrigin, reversePublication, reverseScope, reverseSlot, windowTables } from './names.js';
import { type OpenReverseStreamChecker, ReverseStreamCheck } from './stream-check.js';
import { type VerifyReverse, checkWindow } from './window-evidence.js';
import { advancePosition, cohortsTable, ensureWindowTables, readPosition, readWindow, unrepresentableTable } from './window-store.js';

/** How many times (one per second) a start waits for the slot to be released by a previous holder. */
const SLOT_BUSY_ATTEMPTS = 60;

export interface ReverseSyncOptions {
  spec: Spec;
  /** URL of the old representation's database (where reverse sync reads the new rows and writes the old). */
  databaseUrl: string;
  /** Pool on that database (status queries, window checks). */
  pool: pg.Pool;
  /**
   * Cross-database migrations: the URL and a pool of the new representation's database, where the
   * reverse slot is (streamed) and the new rows are read. Absent: the same database as `databaseUrl`.
   */
  newDatabaseUrl?: string;
  newPool?: pg.Pool;
  /** The control database (evidence); may be `pool`. */
  control: pg.Pool;
  /** A dedicated client for the apply session (the replication origin is set on it). */
  applyClient: pg.Client;
  logger: Logger;
  registry: Registry;
  /** Most keys per apply transaction. */
  batchKeys?: number;
  /** How long a partial batch waits for more before it is applied. */
  flushMs?: number;
  /** Reverse verification (window evidence) every this many ms; 0: off. */
  verifyEveryMs?: number;
  verifyReverse?: VerifyReverse;
  /**
   * The reverse stream check (the reconciler's stream check, sides swapped): every key applied is
   * checked on the old side once its apply committed. Absent: no stream check.
   */
  streamCheck?: OpenReverseStreamChecker;
  /** Called after each apply transaction commits, with its source transactions (benchmarks measure lag with it). */
  onApplied?: (applied: { commitTimeMs: number; keys: number }[], committedAtMs: number) => void;
  /** How often an idle stream looks whether the window was closed (default 1 s). */
  watchMs?: number;
  /** Status server port (0 = any free port); undefined: no server. */
  statusPort?: number;
}

export interface ReverseSyncStatus {
  state: 'starting' | 'streaming' | 'stopped' | 'closed' | 'failed';
  applied: number;
  echoes: number;
  position: string | null;
  lastCommitMs: number | null;
  reason?: string;
}

/** Key columns and rebuilt columns with their SQL types, as the old table declares them. */
async function columnTypes(
  db: Pick<pg.ClientBase, 'query'>,
  schema: string,
  table: string,
  columns: string[],
): Promise<Map<string, string>> {
  const { rows } = await db.query<{ name: string; type: string }>(
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type
       FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped AND a.attname = ANY($3::text[])`,
    [schema, table, columns],
  );
  const types = new Map(rows.map((r) => [r.name, r.type]));
  const missing = columns.filter((c) => !types.has(c));
  if (missing.length > 0)
    throw new ParityError('PARITY_BAD_INPUT', `${schema}.${table} has no column ${missing.map((c) => `"${c}"`).join(', ')}`, {
      hint: "reverse.mapping names the old representation's columns and key names its key; check the spec against the table",
    });
  return types;
}

export class ReverseSync {
  private readonly spec: Spec;
  private readonly schema: string;
  private readonly metrics: ReverseMetrics;
  private stream: ReplicationStream | null = null;
  private statements: ApplyStatements | null = null;
  private cross: CrossDatabaseStatements | null = null;
  private token = 0n;
  private checkpoint: { commitLsn: Lsn; ordinal: number } | null = null;
  private batch: CommittedTransaction[] = [];
  private batchKeyCount = 0;
  /** Echoes counted in batches that needed no transaction; stored with the next one. */
  private unsavedEchoes = 0;
  private chain: Promise<void> = Promise.resolve();
  private applying = false;
  private flushTimer: NodeJS.Timeout | null = null;
  private verifyTimer: NodeJS.Timeout | null = null;
  private watchTimer: NodeJS.Timeout | null = null;
  private server: StatusServer | null = null;
  private streamCheck: ReverseStreamCheck | null = null;
  private stopping = false;
  readonly status: ReverseSyncStatus = { state: 'starting', applied: 0, echoes: 0, position: null, lastCommitMs: null };

  constructor(private readonly options: ReverseSyncOptions) {
    this.spec = options.spec;
    this.schema = options.spec.control.schema;
    this.metrics = reverseMetrics(options.registry);
  }

  /** Streams until stop(), the window closes (contract), or a failure (rejects). */
  async run(): Promise<void> {
    const { spec, pool, applyClient, logger } = this.options;
    assertWindowKind(spec);
    const migration = spec.name;
    await ensureWindowTables(pool, this.schema);
    const window = await readWindow(pool, this.schema, migration);
    if (!window)
      throw new ParityError('PARITY_PHASE', `${migration} has no cutover window: nothing to sync back`, {
        hint: 'run parity cutover --spec FILE [--cohort C] first; it opens the window and creates the reverse slot',
      });
    if (window.state === 'closed') {
      this.status.state = 'closed';
      logger.info({ migration }, 'the reverse window is closed (contract ran): nothing to do');
      return;
    }
    const slot = reverseSlot(spec);
    const newPool = this.options.newPool ?? pool;
    if (!(await slotInfo(newPool, slot)))
      throw new ParityError('PARITY_SLOT_MISSING', `the reverse slot ${slot} is missing while the window is open`, {
        hint: 'changes made since cutover may not reach the old side: verify the old side (parity reverse-sync check) before any rollback',
      });
    const { from, to } = windowTables(spec);
    const reverse = spec.reverse!;
    const oldColumns = Object.keys(reverse.mapping);
    const types = await columnTypes(pool, to.schema, to.table, [...spec.key, ...oldColumns]);
    const shape = {
      kind: spec.target.kind,
      from,
      to,
      key: spec.key.map((name) => ({ name, type: types.get(name)! })),
      columns: oldColumns.map((name) => ({ name, type: types.get(name)!, expr: reverse.mapping[name]! })),
      ...(reverse.representable !== undefined ? { representable: reverse.representable } : {}),
      unrepresentableTable: unrepresentableTable(this.schema),
    };
    if (spec.target.kind === 'other-database') this.cross = crossDatabaseStatements(shape);
    else this.statements = applyStatements(shape);
    this.token = await issueToken(pool, this.schema, reverseScope(spec), `${hostname()}:${process.pid}`);
    const origin = reverseOrigin(spec);
    try {
      await applyClient.query(
        'SELECT pg_replication_origin_create($1) WHERE NOT EXISTS (SELECT 1 FROM pg_replication_origin WHERE roname = $1)',
        [origin],
      );
    } catch (err) {
      if ((err as { code?: string }).code !== '23505') throw err;
    }
    for (let attempt = 1; ; attempt++) {
      try {
        await applyClient.query('SELECT pg_replication_origin_session_setup($1)', [origin]);
        break;
      } catch (err) {
        // Held by the apply session of the reverse sync just fenced out (it stops within a second).
        if ((err as { code?: string }).code !== '55006' || attempt >= SLOT_BUSY_ATTEMPTS) throw err;
        logger.warn({ origin, attempt }, 'the replication origin is in use by another reverse sync (fenced out now); retrying in 1 s');
        await new Promise((r) => setTimeout(r, 1_000));
      }
    }
    this.checkpoint = await readPosition(pool, this.schema, migration);
    const reader = new ChangeReader({
      schema: from.schema,
      table: from.table,
      key: spec.key,
      origin,
      flipPrefix: FLIP_PREFIX,
      migration,
    });
    if (this.options.streamCheck)
      this.streamCheck = new ReverseStreamCheck({
        open: this.options.streamCheck,
        db: pool,
        schema: this.schema,
        migration,
        logger,
        metrics: this.metrics,
      });
    if (this.options.statusPort !== undefined) await this.startServer(this.options.statusPort);
    const newStream = (): ReplicationStream =>
      new ReplicationStream({
        connectionString: this.options.newDatabaseUrl ?? this.options.databaseUrl,
        slot,
        publication: reversePublication(spec),
        logger,
        onMessage: async (message) => {
          const tx = reader.push(message);
          if (tx) await this.committed(tx);
        },
        idle: () => this.batch.length === 0 && !this.applying,
        statusIntervalMs: 5_000,
      });
    this.status.state = 'streaming';
    logger.info(
      { migration, slot, token: this.token.toString(), from: `${from.schema}.${from.table}`, to: `${to.schema}.${to.table}` },
      'reverse sync streaming',
    );
    if ((this.options.verifyEveryMs ?? 0) > 0 && this.options.verifyReverse) this.scheduleVerify();
    // An idle stream applies nothing, so it would not notice a contract: look at the window now and then.
    this.watchTimer = setInterval(() => void this.watchWindow(), this.options.watchMs ?? 1_000);
    try {
      for (let attempt = 1; ; attempt++) {
        this.stream = newStream();
        try {
          await this.stream.run();
          break;
        } catch (err) {
          // The slot is still held by the reverse sync this one just fenced out (it stops at its next
          // batch): wait for it rather than give up.
          if ((err as { code?: string }).code !== '55006' || this.stopping || attempt >= SLOT_BUSY_ATTEMPTS) throw err;
          logger.warn({ slot, attempt }, 'the reverse slot is in use by another process (a fenced-out reverse sync?); retrying in 1 s');
          await new Promise((r) => setTimeout(r, 1_000));
        }
      }
      await this.chain;
      if (this.status.state === 'streaming') this.status.state = 'stopped';
      // (read again: the window watch or an apply may have set it meanwhile)
      if ((this.status.state as ReverseSyncStatus['state']) === 'closed') {
        // The window is over: the reverse slot would only pin WAL from now on.
        const dropped = await dropSlotAndPublication(newPool, slot, reversePublication(spec), true).catch((err: unknown) => {
          logger.warn({ slot, err: err instanceof Error ? err.message : String(err) }, 'could not drop the reverse slot; drop it by hand');
          return null;
        });
        if (dropped) logger.info({ slot, ...dropped }, 'reverse slot and publication dropped');
        // And its replication origin: PostgreSQL keeps a state for every origin in max_replication_slots'
        // shared array until it is dropped, so windows that never dropped theirs end up refusing new ones.
        await applyClient
          .query('SELECT pg_replication_origin_session_reset()')
          .then(() => applyClient.query('SELECT pg_replication_origin_drop($1)', [origin]))
          .then(() => logger.info({ origin }, 'replication origin dropped'))
          .catch((err: unknown) => {
            logger.warn(
              { origin, err: err instanceof Error ? err.message : String(err) },
              'could not drop the replication origin; drop it by hand',
            );
          });
      }
    } catch (err) {
      this.status.state = 'failed';
      this.status.reason = err instanceof Error ? err.message : String(err);
      throw err;
    } finally {
      this.clearTimers();
      await this.streamCheck?.stop();
      await this.server?.close().catch(() => undefined);
    }
  }

  /** Stops streaming after the batch in hand is applied; run() then resolves. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    await this.flush().catch(() => undefined);
    await this.stream?.stop();
  }

  private async committed(tx: CommittedTransaction): Promise<void> {
    const cp = this.checkpoint;
    if (cp && (tx.commitLsn < cp.commitLsn || (tx.commitLsn === cp.commitLsn && tx.lastOrdinal <= cp.ordinal))) {
      // Already applied before a restart: (commit LSN, ordinal) is at or below the stored position.
      this.metrics.transactions.inc({ outcome: 'replayed' });
      this.stream?.durableAdvanced(tx.commitEndLsn);
      return;
    }
    this.batch.push(tx);
    this.batchKeyCount += tx.keys.size;
    if (this.batchKeyCount >= (this.options.batchKeys ?? 2_000) || tx.flip) await this.flush();
    else if (!this.flushTimer)
      this.flushTimer = setTimeout(() => void this.flush().catch((err) => this.stream?.fail(err)), this.options.flushMs ?? 5);
  }

  private flush(): Promise<void> {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    const txs = this.batch;
    this.batch = [];
    this.batchKeyCount = 0;
    if (txs.length === 0) return this.chain;
    this.applying = true;
    this.chain = this.chain
      .then(() => this.apply(txs))
      .finally(() => {
        this.applying = this.batch.length > 0;
      });
    return this.chain;
  }

  /** One fenced transaction for a batch of source transactions; then the slot may move past them. */
  private async apply(txs: CommittedTransaction[]): Promise<void> {
    const db = this.options.applyClient;
    const migration = this.spec.name;
    const keys = new Map<string, string[]>();
    const deleted = new Map<string, boolean>();
    let echoes = 0;
    for (const tx of txs) {
      echoes += tx.echoes;
      for (const [k, v] of tx.keys) {
        keys.set(k, v.values);
        deleted.set(k, v.deleted);
      }
    }
    const last = txs[txs.length - 1]!;
    if (keys.size === 0 && !txs.some((tx) => tx.flip)) {
      // Nothing to write (its own echoes, or transactions of other tables): a replay would write
      // nothing either, so the slot may move on without a transaction here.
      this.checkpoint = { commitLsn: last.commitLsn, ordinal: last.lastOrdinal };
      this.stream?.durableAdvanced(last.commitEndLsn);
      this.metrics.echoes.inc(echoes);
      this.status.echoes += echoes;
      this.unsavedEchoes += echoes;
      for (const tx of txs) this.metrics.transactions.inc({ outcome: tx.echoes > 0 ? 'echo' : 'empty' });
      return;
    }
    const arrays = this.spec.key.map((_, i) => [...keys.values()].map((values) => values[i]));
    let written = 0;
    let cutOver = false;
    // The apply reads the new rows as they are now: only once the batch's transactions are visible to
    // a new snapshot (their commit records are decoded a moment before they are; visibility.ts).
    await waitUntilVisible(
      this.options.newPool ?? this.options.pool,
      txs.filter((tx) => tx.keys.size > 0).map((tx) => tx.xid),
    );
    await db.query('BEGIN');
    try {
      // The window first: a contract closes it and takes a new token in one transaction, and a closed
      // window is a normal end, not a stale holder.
      const window = await readWindow(db, this.schema, migration, true);
      if (window?.state === 'open') await assertFence(db, this.schema, reverseScope(this.spec), this.token);
      else {
        await db.query('ROLLBACK');
        this.status.state = 'closed';
        this.options.logger.info({ migration }, 'the reverse window was closed (contract): reverse sync stops');
        void this.stream?.stop();
        return;
      }
      // With every cohort rolled back the old representation is the source of truth again: what the
      // new side receives now comes from dual writes (the forward path), so nothing is written back.
      cutOver =
        keys.size > 0 &&
        (await db.query(`SELECT 1 FROM ${cohortsTable(this.schema)} WHERE migration = $1 AND state = 'cut-over' LIMIT 1`, [migration])).rows
          .length > 0;
      if (keys.size > 0 && !cutOver) this.metrics.transactions.inc({ outcome: 'skipped-rolled-back' }, txs.length);
      if (cutOver && this.cross) written += await this.applyCrossDatabase(arrays, migration, formatLsn(last.commitLsn));
      else if (cutOver) {
        const st = this.statements!;
        if (st.clearUnrepresentable) await db.query(st.clearUnrepresentable, [...arrays, migration]);
        written += (await db.query(st.write, arrays)).rowCount ?? 0;
        if (st.remove) written += (await db.query(st.remove, arrays)).rowCount ?? 0;
        if (st.recordUnrepresentable) await db.query(st.recordUnrepresentable, [...arrays, migration, formatLsn(last.commitLsn)]);
      }
      await advancePosition(
        db,
        this.schema,
        migration,
        { commitLsn: last.commitLsn, ordinal: last.lastOrdinal },
        { applied: keys.size, echoes: echoes + this.unsavedEchoes },
      );
      await db.query('COMMIT');
      this.unsavedEchoes = 0;
    } catch (err) {
      await db.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
    this.checkpoint = { commitLsn: last.commitLsn, ordinal: last.lastOrdinal };
    this.stream?.durableAdvanced(last.commitEndLsn);
    const now = Date.now();
    this.options.onApplied?.(
      txs.map((tx) => ({ commitTimeMs: tx.commitTimeMs, keys: tx.keys.size })),
      now,
    );
    for (const tx of txs) {
      this.metrics.lag.observe(Math.max(0, now - tx.commitTimeMs) / 1000);
      this.metrics.transactions.inc({ outcome: tx.keys.size > 0 ? 'applied' : tx.echoes > 0 ? 'echo' : 'empty' });
    }
    this.metrics.keys.inc(keys.size);
    this.metrics.rowsWritten.inc(written);
    this.metrics.echoes.inc(echoes);
    this.status.applied += keys.size;
    this.status.echoes += echoes;
    this.status.position = `${formatLsn(last.commitLsn)}/${last.lastOrdinal}`;
    this.status.lastCommitMs = last.commitTimeMs;
    // Checked on the old side now that the apply committed; not when nothing was written back (every cohort rolled back).
    if (cutOver && this.streamCheck)
      await this.streamCheck.enqueue([...keys].map(([k, values]) => [k, { values, deleted: deleted.get(k) === true }] as const));
  }

  /**
   * Cross-database apply, inside the old side's open transaction (after the window and fence
   * checks): read the batch's new rows as they are now from the new side, then make the old rows
   * equal reverse(new) with the same conditional upsert and delete as a shadow table.
   */
  private async applyCrossDatabase(keyArrays: (string | undefined)[][], migration: string, commitLsn: string): Promise<number> {
    const db = this.options.applyClient;
    const st = this.cross!;
    const { rows } = await (this.options.newPool ?? this.options.pool).query(st.fetch, keyArrays);
    const n = this.spec.key.length;
    const columns = Object.keys(this.spec.reverse!.mapping).length;
    const pick = (selected: typeof rows, prefix: string, count: number): (string | null)[][] =>
      Array.from({ length: count }, (_, i) => selected.map((r) => r[`${prefix}${i}`] as string | null));
    const representable = rows.filter((r) => r.parity_rep === true);
    const unrepresentable = rows.filter((r) => r.parity_rep !== true);
    let written = 0;
    if (st.clearUnrepresentable) await db.query(st.clearUnrepresentable, [...keyArrays, migration]);
    if (representable.length > 0)
      written +=
        (await db.query(st.write, [...pick(representable, 'parity_k', n), ...pick(representable, 'parity_c', columns)])).rowCount ?? 0;
    written += (await db.query(st.remove, [...keyArrays, ...pick(rows, 'parity_k', n)])).rowCount ?? 0;
    if (st.recordUnrepresentable && unrepresentable.length > 0)
      await db.query(st.recordUnrepresentable, [...pick(unrepresentable, 'parity_k', n), migration, commitLsn]);
    return written;
  }

  private async watchWindow(): Promise<void> {
    if (this.stopping || this.status.state !== 'streaming') return;
    const pool = this.options.pool;
    const closed = async (): Promise<boolean> => (await readWindow(pool, this.schema, this.spec.name))?.state !== 'open';
    try {
      // The window first: a contract closes it and takes a new token in one transaction, and that is
      // a normal end. A newer token with the window still open is another reverse sync: stop now
      // (releasing the slot for it), not at the next change.
      let over = await closed();
      if (!over && (await currentToken(pool, this.schema, reverseScope(this.spec))) !== this.token) {
        over = await closed();
        if (!over) {
          this.stream?.fail(
            new ParityError('PARITY_STALE_FENCE', `reverse fencing token ${this.token} is stale: another reverse sync took over`, {
              hint: 'run one reverse sync per migration; this one stops',
            }),
          );
          return;
        }
      }
      if (over) {
        this.status.state = 'closed';
        this.options.logger.info({ migration: this.spec.name }, 'the reverse window was closed (contract): reverse sync stops');
        await this.stop();
      }
    } catch (err) {
      this.options.logger.warn(
        { err: err instanceof Error ? err.message : String(err) },
        'could not read the reverse window state; retrying',
      );
    }
  }

  private scheduleVerify(): void {
    this.verifyTimer = setTimeout(async () => {
      try {
        const check = await checkWindow(
          this.spec,
          { old: this.options.pool, control: this.options.control, ...(this.options.newPool ? { new: this.options.newPool } : {}) },
          this.options.verifyReverse!,
        );
        this.metrics.windowClean.set(check.clean ? 1 : 0);
        this.metrics.cleanSince.set(check.cleanSince ? Date.parse(check.cleanSince) / 1000 : 0);
        this.metrics.unrepresentable.set(check.unrepresentable);
        if (check.lagBytes !== null) this.metrics.slotLagBytes.set(check.lagBytes);
        this.metrics.driftRows.set({ check: 'segment', state: 'confirmed' }, check.verification.confirmedDrift);
        this.metrics.driftRows.set({ check: 'segment', state: 'in_flight' }, check.verification.inFlight);
        this.metrics.driftRows.set({ check: 'stream', state: 'confirmed' }, check.stream?.confirmedDriftSinceLast ?? 0);
        this.metrics.driftRows.set({ check: 'stream', state: 'in_flight' }, this.streamCheck?.inFlight ?? 0);
        this.options.logger.info({ clean: check.clean, cleanSince: check.cleanSince }, check.summary);
      } catch (err) {
        this.metrics.windowClean.set(0);
        this.options.logger.warn(
          { err: err instanceof Error ? err.message : String(err) },
          'reverse window check failed; retrying at the next interval',
        );
      }
      if (!this.stopping && this.status.state === 'streaming') this.scheduleVerify();
    }, this.options.verifyEveryMs);
  }

  private async startServer(port: number): Promise<void> {
    this.server = await startStatusServer({
      registry: this.options.registry,
      port,
      health: async () => {
        const lag = await slotLag(this.options.newPool ?? this.options.pool, reverseSlot(this.spec)).catch(() => null);
        if (lag) this.metrics.slotLagBytes.set(lag.lagBytes);
        const ok = this.status.state === 'streaming' || this.status.state === 'closed';
        return {
          ok,
          status: this.status.state,
          ...(ok ? {} : { reason: this.status.reason ?? 'reverse sync is not streaming' }),
          details: {
            applied: this.status.applied,
            echoes: this.status.echoes,
            position: this.status.position,
            slotLagBytes: lag?.lagBytes ?? null,
            streamCheck: this.streamCheck
              ? { ...this.streamCheck.counts, inFlight: this.streamCheck.inFlight, lastError: this.streamCheck.lastError }
              : null,
          },
        };
      },
      ready: () => ({
        ok: this.status.state === 'streaming',
        status: this.status.state,
        ...(this.status.state === 'streaming' ? {} : { reason: this.status.reason ?? `reverse sync is ${this.status.state}` }),
      }),
      live: () => this.status.state !== 'failed',
    });
    this.options.logger.info({ url: this.server.url }, 'status server listening');
  }

  private clearTimers(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    if (this.verifyTimer) clearTimeout(this.verifyTimer);
    if (this.watchTimer) clearInterval(this.watchTimer);
    this.watchTimer = null;
    this.flushTimer = null;
    this.verifyTimer = null;
  }
}
