/**
 * TLS off the main thread for a PostgreSQL connection that carries many small messages: the CDC's
 * logical replication connection (issue 16).
 *
 * Why: a walsender flushes after every change it decodes, so over TLS each change is a TLS record of
 * its own (~200 bytes), and Node's TLS socket hands each record to JavaScript as a chunk of its own:
 * node-postgres' parser, pg-logical-replication's flow control and the CDC pipeline then run once
 * per change instead of once per 64 KB read, and the native -> JS callback per record is paid on the
 * connector's busiest thread (BENCHMARKS.md, issue 16). Over plain TCP the same changes arrive 16 KB
 * at a time. Joining the records on the main thread does not help: the cost is the TLS socket's
 * callback itself.
 *
 * What: {@link WorkerTlsStream} is the socket node-postgres talks to (its public `stream` option). A
 * worker thread (pg-tls-worker.ts) owns the TCP socket and the TLS session and sends the main thread
 * the decrypted bytes of each of its event-loop turns as one transferred buffer; node-postgres speaks
 * plain protocol over it. TLS itself is unchanged: the same SSLRequest, the same `tls.connect` options
 * node-postgres builds from the URL (CA, client certificate and key, the host checked, SNI for names
 * only), the same error messages and codes for the same faults.
 *
 * Which URLs: `sslmode=verify-full` only (with sslrootcert, sslcert, sslkey and uselibpqcompat, which
 * does not change verify-full), to a TCP host. node-postgres 8 treats `require`, `verify-ca` and
 * `prefer` as verify-full too but warns that version 9 will give them libpq's weaker meaning: those
 * stay with node-postgres, as does anything this module does not know (`sslnegotiation`, `ssl`,
 * another `ssl*` parameter, a Unix socket, PGSSLNEGOTIATION in the environment).
 *
 * The switch: PARITY_REPLICATION_TLS=worker|node-postgres ({@link replicationTlsFromEnv}); the default
 * is the worker, the figures behind that are in services/cdc/README.md and BENCHMARKS.md.
 */
import { existsSync, readFileSync } from 'node:fs';
import { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ParityError } from './errors.js';
import type { FromWorker, TlsWorkerSettings, ToWorker, WorkerError } from './pg-tls-worker.js';

/** Who does TLS on the replication connection: the worker thread, or node-postgres on the main thread. */
export type ReplicationTls = 'worker' | 'node-postgres';

/**
 * The default of PARITY_REPLICATION_TLS: the worker. On a quiet machine it made the secured CDC 25-31 %
 * faster (75,367 / 79,114 events/s against 57,731 / 60,365 / 61,814) with a commit-to-Kafka p99 of
 * 16-25 ms (node-postgres: 12-18 ms); under load its p99 rose to 82-244 ms where node-postgres stayed
 * under 20 ms (services/cdc/README.md, BENCHMARKS.md). `node-postgres` is the way back.
 */
export const DEFAULT_REPLICATION_TLS: ReplicationTls = 'worker';

/**
 * PARITY_REPLICATION_TLS: `worker` (TLS of a verify-full replication connection in a worker thread)
 * or `node-postgres` (node-postgres' own TLS on the main thread); unset or empty: the default.
 * Anything else is a bad-input error naming the variable.
 */
export function replicationTlsFromEnv(env: NodeJS.ProcessEnv = process.env): ReplicationTls {
  const value = env.PARITY_REPLICATION_TLS;
  if (value === undefined || value === '') return DEFAULT_REPLICATION_TLS;
  if (value === 'worker' || value === 'node-postgres') return value;
  throw new ParityError('PARITY_BAD_INPUT', `PARITY_REPLICATION_TLS must be worker or node-postgres, got ${JSON.stringify(value)}`, {
    retriable: false,
    hint: `unset PARITY_REPLICATION_TLS (${DEFAULT_REPLICATION_TLS} is the default), or set it to worker or node-postgres`,
  });
}

/** URL parameters whose TLS meaning the transport takes over from node-postgres (and removes from the URL). */
const TAKEN = new Set(['sslmode', 'sslrootcert', 'sslcert', 'sslkey', 'uselibpqcompat']);

/** The files node-postgres would read for a verify-full URL, by their URL parameter. */
export interface PgTlsFiles {
  sslcert?: string;
  sslkey?: string;
  sslrootcert?: string;
}

/** A URL the transport takes over: the URL without its TLS parameters, and the files they named. */
export interface PgTlsTakeover {
  connectionString: string;
  files: PgTlsFiles;
}

/**
 * Whether the transport takes `url` over, and what node-postgres then gets: null unless the URL asks
 * for `sslmode=verify-full` to a TCP host with no TLS parameter this module does not know (see the
 * module comment). Pure: no file is read here.
 */
export function pgTlsTakeover(url: string, env: NodeJS.ProcessEnv = process.env): PgTlsTakeover | null {
  // pg-connection-string re-encodes URLs with spaces or stray %; such a URL stays with node-postgres.
  if (/ |%[^a-f0-9]|%[a-f0-9][^a-f0-9]/i.test(url)) return null;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return null;
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') return null;
  const params = u.searchParams;
  if (params.get('sslmode') !== 'verify-full') return null;
  for (const key of params.keys()) if ((key.startsWith('ssl') || key === 'uselibpqcompat') && !TAKEN.has(key)) return null;
  if (params.getAll('sslmode').length > 1) return null;
  // A Unix socket (an empty host, a host parameter or an encoded path) has no TLS; direct TLS
  // negotiation from the environment is node-postgres' own.
  const host = params.get('host') ?? safeDecode(u.hostname);
  if (host === undefined || host === '' || host.startsWith('/')) return null;
  if (env.PGSSLNEGOTIATION) return null;
  const files: PgTlsFiles = {};
  for (const key of ['sslcert', 'sslkey', 'sslrootcert'] as const) {
    const value = params.get(key);
    // pg-connection-string reads a file only for a non-empty value.
    if (value) files[key] = value;
  }
  return { connectionString: withoutParams(url, TAKEN), files };
}

/** `url` with the query parameters named in `drop` removed; every other byte as it was. */
function withoutParams(url: string, drop: ReadonlySet<string>): string {
  const hash = url.indexOf('#');
  const body = hash < 0 ? url : url.slice(0, hash);
  const fragment = hash < 0 ? '' : url.slice(hash);
  const q = body.indexOf('?');
  if (q < 0) return url;
  const kept = body
    .slice(q + 1)
    .split('&')
    .filter((pair) => {
      const key = safeDecode((pair.split('=', 1)[0] ?? '').replace(/\+/g, ' '));
      return key === undefined || !drop.has(key);
    });
  return `${body.slice(0, q)}${kept.length > 0 ? `?${kept.join('&')}` : ''}${fragment}`;
}

function safeDecode(text: string): string | undefined {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}

/** What node-postgres gets for a URL the transport takes over. */
export interface PgTlsTransport {
  /** The URL without its TLS parameters. */
  connectionString: string;
  /** Plain protocol to the transport (and PGSSLMODE in the environment cannot turn TLS back on). */
  ssl: false;
  /** node-postgres' `stream` option: a new transport per connection. */
  stream: () => Duplex;
}

/**
 * The worker-thread TLS transport for `url`, or null when the URL is not one it takes over
 * ({@link pgTlsTakeover}): node-postgres then does TLS (or none) itself. The CA, certificate and key
 * files are read when node-postgres creates the connection, in node-postgres' order and with its
 * errors, as it would read them itself.
 */
export function workerTlsTransport(url: string, env: NodeJS.ProcessEnv = process.env): PgTlsTransport | null {
  const takeover = pgTlsTakeover(url, env);
  if (!takeover) return null;
  const { files } = takeover;
  return {
    connectionString: takeover.connectionString,
    ssl: false,
    stream: () => {
      // As pg-connection-string: sslcert, sslkey, sslrootcert, each readFileSync(path).toString().
      const tls: TlsWorkerSettings['tls'] = {};
      if (files.sslcert) tls.cert = readFileSync(files.sslcert).toString();
      if (files.sslkey) tls.key = readFileSync(files.sslkey).toString();
      if (files.sslrootcert) tls.ca = readFileSync(files.sslrootcert).toString();
      return new WorkerTlsStream(tls);
    },
  };
}

/**
 * The worker's module next to this one: pg-tls-worker.js in dist/ (compiled), pg-tls-worker.ts
 * beside the sources (vitest; Node strips its types itself).
 */
export function tlsWorkerUrl(base: string = import.meta.url): URL {
  const js = new URL('./pg-tls-worker.js', base);
  if (existsSync(fileURLToPath(js))) return js;
  const ts = new URL('./pg-tls-worker.ts', base);
  if (existsSync(fileURLToPath(ts))) return ts;
  throw new Error(`the TLS worker module is missing next to ${fileURLToPath(base)} (pg-tls-worker.js or .ts): rebuild with npm run build`);
}

export interface WorkerTlsStreamOptions {
  /** Bytes the worker sends ahead of what the main thread has taken (default 256 KiB). */
  windowBytes?: number;
  /** The readable side's buffer before acknowledgements stop (default 256 KiB). */
  highWaterMark?: number;
}

/**
 * The worker's V8 heap is small by design: it holds a TLS session, a few chunks of at most the
 * window, and garbage. Without limits it sizes its young generation like the main thread's (the
 * bin's --max-semi-space-size), which is tens of MB of RSS for nothing.
 */
const WORKER_LIMITS = { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 48 };

/**
 * The Node options to start the worker with, or undefined to let it inherit the parent's (what a
 * worker does by default, V8 flags such as the bin's --max-semi-space-size included). Only a parent
 * started with `--input-type` (`node --input-type=module -e ...`) needs a list of its own: a worker
 * started from a file refuses that option. The list then drops it and `-e`/`-p` with their code, and
 * keeps the rest (loaders such as `--import`); a V8 flag in it makes Worker throw, and the worker is
 * then started with no options at all (see WorkerTlsStream.connect).
 */
export function workerExecArgv(execArgv: readonly string[]): string[] | undefined {
  if (!execArgv.some((arg) => arg === '--input-type' || arg.startsWith('--input-type='))) return undefined;
  const out: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const arg = execArgv[i]!;
    if (arg === '--input-type' || ['-e', '--eval', '-p', '--print'].includes(arg)) i++;
    else if (!arg.startsWith('--input-type=') && !/^--(eval|print)=/.test(arg)) out.push(arg);
  }
  return out;
}

function reviveError(e: WorkerError): Error {
  const err = new Error(e.message);
  if (e.name !== 'Error') err.name = e.name;
  return Object.assign(err, e.props);
}

/**
 * The socket node-postgres talks to when {@link workerTlsTransport} takes a URL over: `connect(port,
 * host)` starts the worker, which connects, negotiates TLS and only then reports 'connect'; reads are
 * the worker's per-turn chunks; writes go to the worker's TLS socket. It implements the part of
 * net.Socket node-postgres uses (connect, setNoDelay, setKeepAlive, ref, unref, the Duplex).
 *
 * Flow control end to end: a chunk the readable side takes while below its high-water mark is
 * acknowledged at once; past it, acknowledgements wait for `_read` (the consumer resumed), and the
 * worker pauses its TLS socket once `windowBytes` are unacknowledged. Destroying the stream ends the
 * worker (its sockets are destroyed and its thread exits; it never holds the process open after that).
 */
export class WorkerTlsStream extends Duplex {
  private worker: Worker | null = null;
  /** Bytes received and not yet acknowledged to the worker (held while the readable side is full). */
  private unacked = 0;
  /** This side ended or destroyed the connection: the worker's close needs no further reading. */
  private ending = false;
  /** The worker reported its last message (its sockets are closed). */
  private workerClosed = false;
  private noDelay = false;
  private referenced = true;
  private readonly windowBytes: number;

  constructor(
    private readonly tls: TlsWorkerSettings['tls'],
    options: WorkerTlsStreamOptions = {},
  ) {
    super({ readableHighWaterMark: options.highWaterMark ?? 256 * 1024, allowHalfOpen: false });
    this.windowBytes = options.windowBytes ?? 256 * 1024;
  }

  connect(port: number, host: string): this {
    if (typeof host !== 'string' || !Number.isInteger(Number(port))) {
      process.nextTick(() => this.destroy(new Error('the TLS worker transport connects to a TCP host and port only')));
      return this;
    }
    const settings: TlsWorkerSettings = { host, port: Number(port), tls: this.tls, noDelay: this.noDelay, windowBytes: this.windowBytes };
    let worker: Worker;
    try {
      const start = (execArgv: string[] | undefined) =>
        new Worker(tlsWorkerUrl(), { workerData: settings, resourceLimits: WORKER_LIMITS, ...(execArgv ? { execArgv } : {}) });
      const execArgv = workerExecArgv(process.execArgv);
      try {
        worker = start(execArgv);
      } catch (err) {
        if (!execArgv || (err as NodeJS.ErrnoException).code !== 'ERR_WORKER_INVALID_EXEC_ARGV') throw err;
        worker = start([]);
      }
    } catch (err) {
      process.nextTick(() => this.destroy(err as Error));
      return this;
    }
    this.worker = worker;
    if (!this.referenced) worker.unref();
    worker.on('message', (m: FromWorker) => this.onMessage(m));
    worker.on('error', (err) => this.destroy(err));
    worker.on('exit', (code) => {
      if (this.destroyed || this.workerClosed) return;
      this.destroy(this.ending ? undefined : new Error(`the TLS worker thread stopped unexpectedly (exit code ${code})`));
    });
    return this;
  }

  private onMessage(m: FromWorker): void {
    if (this.destroyed) return;
    switch (m.t) {
      case 'connect':
        this.emit('connect');
        break;
      case 'data': {
        const chunk = Buffer.from(m.data);
        if (this.push(chunk)) this.send({ t: 'ack', bytes: chunk.length });
        else this.unacked += chunk.length;
        break;
      }
      case 'end':
        this.push(null);
        break;
      case 'error':
        this.destroy(reviveError(m.error));
        break;
      case 'close':
        this.workerClosed = true;
        // Closed after this side asked for it: nothing more to read (node-postgres waits for 'close'
        // to finish end(), even while its consumer is paused). Closed by the server: end the readable
        // side; the stream closes once the reader has taken what is left, as a net.Socket does.
        if (this.ending) this.destroy();
        else this.push(null);
        break;
    }
  }

  private send(message: ToWorker): void {
    this.worker?.postMessage(message);
  }

  override _read(): void {
    if (this.unacked > 0) {
      const bytes = this.unacked;
      this.unacked = 0;
      this.send({ t: 'ack', bytes });
    }
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    if (!this.worker) {
      callback(new Error('write before the TLS worker transport was connected'));
      return;
    }
    this.send({ t: 'write', data: chunk });
    callback();
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.ending = true;
    this.send({ t: 'end' });
    callback();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.ending = true;
    const worker = this.worker;
    if (worker) {
      worker.postMessage({ t: 'destroy' } satisfies ToWorker);
      // The worker closes its sockets and exits by itself; it never keeps the process alive meanwhile,
      // and is stopped outright if it has not exited in 5 s.
      worker.unref();
      const stop = setTimeout(() => void worker.terminate(), 5_000);
      stop.unref();
      worker.once('exit', () => clearTimeout(stop));
    }
    callback(err);
  }

  setNoDelay(noDelay = true): this {
    this.noDelay = noDelay;
    this.send({ t: 'nodelay', noDelay });
    return this;
  }

  setKeepAlive(enable = false, initialDelay = 0): this {
    this.send({ t: 'keepalive', enable, delayMs: initialDelay });
    return this;
  }

  ref(): this {
    this.referenced = true;
    if (!this.destroyed) this.worker?.ref();
    return this;
  }

  unref(): this {
    this.referenced = false;
    this.worker?.unref();
    return this;
  }
}
