/**
 * `pg-logical-replication` used safely, through its public API only (the version is pinned exactly;
 * test/integration/cdc/replication-library.test.ts fails if the behaviour relied on here changes):
 * - `acknowledge: { auto: false, timeoutSeconds: 0 }`: the library never reports a position by itself
 *   (its timer would report the last *received* LSN, past data not yet in Kafka);
 * - `flowControl`: handlers are awaited one message at a time and the socket pauses while they run, so a
 *   slow Kafka bounds memory instead of buffering the WAL;
 * - every session starts with `'0/00000000'`, which PostgreSQL moves forward to the slot's
 *   confirmed_flush_lsn: we resume from the database's truth, never from the library's memory;
 * - keepalives are answered here with the last *durable* position; the server's WAL end is reported
 *   only when nothing received is still in flight (which lets an idle slot advance). "Received" is
 *   counted here, by the plugin's `parse` (the library parses each XLogData as it arrives, before it
 *   queues it and before a later keepalive is emitted), and "handled" when our handler returns: a
 *   keepalive that arrives while a transaction is received but not yet handled never confirms past it;
 * - every column arrives as text, and row messages (Insert, Update, Delete) are read here by column
 *   position (pgoutput-rows.ts), never through the library's tuple reader or a process-global `pg.types`
 *   parser (value-decoder.ts converts the text exactly).
 */
import { LogicalReplicationService, PgoutputPlugin, type Pgoutput } from 'pg-logical-replication';
import type { Logger } from '../../services/core/log.js';
import { type Lsn, formatLsn, parseLsn } from '../../services/core/lsn.js';
import { replicationTlsFromEnv, workerTlsTransport } from '../../services/core/pg-tls-stream.js';
import { type RowMessage, isRowMessage, parseRowMessage } from './pgoutput-rows.js';
import { publicationOption } from './slot.js';

/** What the CDC handles: the library's messages, with row messages read by position (pgoutput-rows.ts). */
export type PgoutputMessage =
  | Exclude<Pgoutput.Message, Pgoutput.MessageInsert | Pgoutput.MessageUpdate | Pgoutput.MessageDelete>
  | RowMessage;

/** Session settings that make text output deterministic whatever the server's defaults. */
export const TEXT_OUTPUT_OPTIONS =
  '-c datestyle=ISO,MDY -c intervalstyle=postgres -c timezone=UTC -c extra_float_digits=1 -c bytea_output=hex';

/** pgoutput with row messages read by position, as text (pgoutput-rows.ts); `onParsed` counts what was received. */
export class TextPgoutputPlugin extends PgoutputPlugin {
  /** Relations as their latest Relation message described them (the library keeps its own copy privately). */
  private readonly relations = new Map<number, Pgoutput.MessageRelation>();

  constructor(
    options: ConstructorParameters<typeof PgoutputPlugin>[0],
    private readonly onParsed: () => void = () => undefined,
  ) {
    super(options);
  }

  override parse(buffer: Buffer): PgoutputMessage {
    // Parsing happens as bytes arrive, before queued handlers run, so a Relation is known here before
    // the next row message of its table is read.
    const message = isRowMessage(buffer)
      ? parseRowMessage(buffer, (oid) => this.relations.get(oid))
      : (super.parse(buffer) as Exclude<PgoutputMessage, RowMessage>);
    this.onParsed();
    if (message.tag === 'relation') this.relations.set(message.relationOid >>> 0, message);
    return message;
  }
}

export interface ReplicationStreamOptions {
  connectionString: string;
  slot: string;
  publication: string;
  logger: Logger;
  /**
   * Handles each message, in WAL order; the next one waits until the returned promise resolves
   * (undefined: handled already).
   */
  onMessage: (message: PgoutputMessage, lsn: Lsn) => Promise<void> | undefined;
  /**
   * The position already durable when the session starts (the slot's confirmed flush LSN); later
   * positions arrive through `durableAdvanced`, from the ack tracker's onDurable.
   */
  startLsn?: Lsn;
  /** True when no received transaction is still waiting for Kafka. */
  idle: () => boolean;
  /** Standby status updates at least this often (keep well below wal_sender_timeout, default 60 s). */
  statusIntervalMs?: number;
  /** Coalesces status updates after the durable position moves. */
  ackDelayMs?: number;
  onKeepalive?: (walEnd: Lsn) => void;
  /** How long closing the connection may take (default 5 s; see CLOSE_TIMEOUT_MS). */
  closeTimeoutMs?: number;
  /** Makes the replication service (tests pass a fake); default pg-logical-replication's. */
  service?: (settings: { connectionString: string }) => ReplicationService;
}

/** What this module uses of pg-logical-replication's LogicalReplicationService: its public API. */
export interface ReplicationService {
  on(event: 'data', listener: (lsn: string, message: PgoutputMessage) => Promise<void> | undefined): unknown;
  on(event: 'heartbeat', listener: (lsn: string, timestamp: number, shouldRespond: boolean) => void): unknown;
  on(event: 'error', listener: (err: unknown) => void): unknown;
  subscribe(plugin: PgoutputPlugin, slot: string, uptoLsn: string): Promise<unknown>;
  acknowledge(lsn: string): Promise<boolean>;
  stop(): Promise<unknown>;
}

function libraryService(settings: { connectionString: string }): ReplicationService {
  // Over verify-full TLS (PARITY_REPLICATION_TLS=worker, the default) the walsender's one TLS record per
  // change is decrypted in a worker thread and reaches node-postgres a read at a time
  // (services/core/pg-tls-stream.ts). With PARITY_REPLICATION_TLS=node-postgres, and for any other URL,
  // node-postgres does TLS itself.
  const transport = replicationTlsFromEnv() === 'worker' ? workerTlsTransport(settings.connectionString) : null;
  const connection = transport
    ? { connectionString: transport.connectionString, ssl: transport.ssl, stream: transport.stream }
    : { connectionString: settings.connectionString };
  return new LogicalReplicationService({ ...connection, application_name: 'parity-cdc', options: TEXT_OUTPUT_OPTIONS } as never, {
    acknowledge: { auto: false, timeoutSeconds: 0 },
    flowControl: { enabled: true },
  }) as unknown as ReplicationService;
}

/**
 * How long closing the replication connection may take. pg's `end()` resolves when the socket reads the
 * server's end; the library pauses the socket while a handler runs and, once stopped, never resumes it,
 * so a socket paused at that moment never reads it (seen on a TLS connection: the session stayed in
 * "stopping" for good). After this the session ends without waiting: the process exits, or the next
 * session opens a connection of its own.
 */
const CLOSE_TIMEOUT_MS = 5_000;

export class ReplicationStream {
  private readonly service: ReplicationService;
  /** Settles once the connection was closed (or given up on after CLOSE_TIMEOUT_MS); `run` returns then. */
  private markClosed: () => void = () => undefined;
  private readonly closed = new Promise<void>((resolve) => {
    this.markClosed = resolve;
  });
  private readonly plugin: TextPgoutputPlugin;
  /** Messages parsed (received) and handled (our handler returned) this session. */
  private received = 0;
  private handled = 0;
  private maxQueued = 0;
  private reported: Lsn = 0n;
  /** The highest position we may report: durable commits, or an idle keepalive's WAL end. */
  private safe: Lsn = 0n;
  private statusTimer: NodeJS.Timeout | null = null;
  private ackTimer: NodeJS.Timeout | null = null;
  private failure: unknown = null;
  private stopped = false;

  constructor(private readonly options: ReplicationStreamOptions) {
    this.plugin = new TextPgoutputPlugin(
      { protoVersion: 1, publicationNames: [publicationOption(options.publication)], messages: true },
      () => {
        this.received++;
        const pending = this.received - this.handled;
        if (pending > this.maxQueued) this.maxQueued = pending;
      },
    );
    this.safe = options.startLsn ?? 0n;
    this.service = (options.service ?? libraryService)({ connectionString: options.connectionString });
    // Not an async function: a message handled synchronously costs no promise of ours (the library
    // awaits whatever the listener returns).
    this.service.on('data', (lsn: string, message: PgoutputMessage): Promise<void> | undefined => {
      // After a handler failed, the library carries on with the next message: ignore the rest, the
      // session is being torn down and the slot replays them.
      if (this.failure || this.stopped) {
        this.handled++;
        return undefined;
      }
      let pending: Promise<void> | undefined;
      try {
        pending = options.onMessage(message, parseLsn(lsn));
      } catch (err) {
        this.fail(err);
      }
      if (!pending) {
        this.handled++;
        return undefined;
      }
      return pending.then(
        () => {
          this.handled++;
        },
        (err: unknown) => {
          this.fail(err);
          this.handled++;
        },
      );
    });
    this.service.on('heartbeat', (lsn: string, _timestamp: number, shouldRespond: boolean) => {
      const walEnd = parseLsn(lsn);
      options.onKeepalive?.(walEnd);
      if (this.nothingQueued() && options.idle() && walEnd > this.safe) {
        // Nothing in flight: everything before the server's WAL end is either durable or not ours.
        // Report it soon, so an idle slot follows a busy server instead of pinning its WAL.
        this.raiseSafe(walEnd);
        this.scheduleStatus();
      }
      if (shouldRespond) void this.sendStatus();
    });
    this.service.on('error', (err: unknown) => this.fail(err));
  }

  /**
   * Streams until `stop()` or a failure. Resolves on stop, rejects with the failure (connection lost,
   * a handler threw). Either way nothing past the durable position was ever reported.
   */
  async run(): Promise<void> {
    this.statusTimer = setInterval(() => void this.sendStatus(), this.options.statusIntervalMs ?? 10_000);
    try {
      await Promise.race([this.service.subscribe(this.plugin, this.options.slot, '0/00000000'), this.closed]);
    } catch (err) {
      if (!this.stopped) this.fail(err);
    } finally {
      this.clearTimers();
    }
    if (this.failure && !this.stopped) throw this.failure;
    if (!this.stopped) throw new Error('replication connection closed by the server');
  }

  /** The durable position moved to `lsn` (the ack tracker's onDurable): report it soon (coalesced). */
  durableAdvanced(lsn: Lsn): void {
    this.raiseSafe(lsn);
    this.scheduleStatus();
  }

  private scheduleStatus(): void {
    if (this.ackTimer) return;
    this.ackTimer = setTimeout(() => {
      this.ackTimer = null;
      void this.sendStatus();
    }, this.options.ackDelayMs ?? 20);
  }

  /** The last position reported to PostgreSQL as flushed. */
  get reportedLsn(): Lsn {
    return this.reported;
  }

  /** Reports the durable position one last time and closes the connection. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    await this.sendStatus();
    this.stopped = true;
    this.clearTimers();
    await this.close();
  }

  /** Closes at once after a failure, reporting nothing more. */
  async abort(): Promise<void> {
    this.stopped = true;
    this.clearTimers();
    await this.close();
  }

  /** Ends the session with `err` (e.g. Kafka failed): `run` rejects, nothing more is reported. */
  fail(err: unknown): void {
    if (this.failure || this.stopped) return;
    this.failure = err;
    this.options.logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'replication session failed');
    void this.close();
  }

  /** Closes the connection, waiting at most CLOSE_TIMEOUT_MS for it. */
  private async close(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.options.closeTimeoutMs ?? CLOSE_TIMEOUT_MS);
    });
    const outcome = await Promise.race([
      this.service.stop().then(
        () => 'closed' as const,
        () => 'closed' as const,
      ),
      gaveUp,
    ]);
    clearTimeout(timer);
    if (outcome === 'timeout')
      this.options.logger.warn(
        { slot: this.options.slot },
        'the replication connection did not close in time; the session ends without it',
      );
    this.markClosed();
  }

  private raiseSafe(lsn: Lsn): void {
    if (lsn > this.safe) this.safe = lsn;
  }

  /** The most messages received and not yet handled (queued for or inside the handler) since last asked. */
  takeMaxQueued(): number {
    const max = this.maxQueued;
    this.maxQueued = this.received - this.handled;
    return max;
  }

  /** Nothing received is waiting for, or inside, the handler. */
  private nothingQueued(): boolean {
    return this.received === this.handled;
  }

  private async sendStatus(): Promise<void> {
    if (this.stopped || this.failure) return;
    const lsn = this.safe;
    if (lsn === 0n) return;
    // The library reports `lsn + 1` as written/flushed/applied. PostgreSQL skips, on restart, every
    // transaction whose commit record starts before the reported position; a commit record may start
    // exactly at the previous commit's end LSN, so reporting end + 1 could skip it. Pass end - 1.
    const ok = await this.service.acknowledge(formatLsn(lsn - 1n)).catch(() => false);
    if (ok) this.reported = lsn;
  }

  private clearTimers(): void {
    if (this.statusTimer) clearInterval(this.statusTimer);
    if (this.ackTimer) clearTimeout(this.ackTimer);
    this.statusTimer = null;
    this.ackTimer = null;
  }
}
