/**
 * The worker thread behind pg-tls-stream.ts's {@link WorkerTlsStream} (issue 16): it owns one
 * PostgreSQL connection's TCP socket and TLS, and hands the main thread the decrypted bytes of each
 * event-loop turn as one transferred buffer.
 *
 * It does what node-postgres does for `sslmode=verify-full` (pg's connection.js): PostgreSQL's
 * SSLRequest, the server's one-byte answer read the same way (anything but `S` fails with pg's own
 * wording), then `tls.connect` on the same socket with the host checked against the certificate, SNI
 * only for a name (never an IP address, RFC 6066) and the CA / client certificate / key as read from
 * the URL's files. Errors go to the main thread with their message and their primitive properties
 * (code, errno, syscall, address, port, reason, host), so the main thread raises what node-postgres
 * would have raised.
 *
 * Flow control: at most `windowBytes` sent and not yet acknowledged by the main thread; past that
 * the TLS socket is paused, which stops reading TCP, so the server's send buffer fills and the
 * walsender waits, as with a paused socket on the main thread.
 *
 * Self-contained (only node: modules, only erasable TypeScript): it runs as compiled JavaScript from
 * dist/ and, under vitest, as this .ts file through Node's own type stripping.
 */
import { isIP, Socket } from 'node:net';
import { type ConnectionOptions, connect as tlsConnect, type TLSSocket } from 'node:tls';
import { parentPort, workerData } from 'node:worker_threads';

/** What the main thread gives the worker (pg-tls-stream.ts builds it). */
export interface TlsWorkerSettings {
  host: string;
  port: number;
  /** CA, client certificate and key as node-postgres reads them from sslrootcert, sslcert, sslkey. */
  tls: { ca?: string; cert?: string; key?: string };
  noDelay: boolean;
  /** Bytes sent to the main thread and not yet acknowledged before the TLS socket pauses. */
  windowBytes: number;
}

/** An error as it crosses to the main thread: its text and primitive own properties. */
export interface WorkerError {
  name: string;
  message: string;
  props: Record<string, string | number | boolean | null>;
}

/** Main thread -> worker. */
export type ToWorker =
  | { t: 'write'; data: Uint8Array }
  | { t: 'end' }
  | { t: 'ack'; bytes: number }
  | { t: 'keepalive'; enable: boolean; delayMs: number }
  | { t: 'nodelay'; noDelay: boolean }
  | { t: 'destroy' };

/** Worker -> main thread. */
export type FromWorker =
  | { t: 'connect' }
  | { t: 'data'; data: ArrayBuffer }
  | { t: 'end' }
  | { t: 'error'; error: WorkerError }
  | { t: 'close' };

/** The most decrypted bytes sent as one chunk: a plain TCP socket's read size. */
const MAX_CHUNK_BYTES = 64 * 1024;

/** PostgreSQL's SSLRequest: length 8, request code 80877103. */
const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);

function describeError(err: Error): WorkerError {
  const props: WorkerError['props'] = {};
  for (const [key, value] of Object.entries(err)) {
    if (value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') props[key] = value;
  }
  return { name: err.name, message: err.message, props };
}

function run(port: NonNullable<typeof parentPort>, settings: TlsWorkerSettings): void {
  const post = (message: FromWorker, transfer?: ArrayBuffer[]) => port.postMessage(message, transfer);
  const raw = new Socket();
  raw.setNoDelay(settings.noDelay);
  let tls: TLSSocket | null = null;
  let failed = false;
  let finished = false;
  let chunks: Buffer[] = [];
  let bytes = 0;
  let scheduled = false;
  let outstanding = 0;
  let paused = false;

  const fail = (err: Error) => {
    if (failed || finished) return;
    failed = true;
    post({ t: 'error', error: describeError(err) });
    tls?.destroy();
    raw.destroy();
  };
  // The last message: the port closes and the thread ends once its sockets are gone.
  const finish = () => {
    if (finished) return;
    flush();
    finished = true;
    post({ t: 'close' });
    port.close();
  };
  // Everything decrypted in one turn of this thread's event loop goes over as one buffer of its own
  // (not one of Buffer's shared pool slabs: its memory moves to the main thread).
  function flush(): void {
    scheduled = false;
    if (bytes === 0 || finished) return;
    const out = Buffer.allocUnsafeSlow(bytes);
    let at = 0;
    for (const chunk of chunks) at += chunk.copy(out, at);
    chunks = [];
    outstanding += bytes;
    bytes = 0;
    post({ t: 'data', data: out.buffer as ArrayBuffer }, [out.buffer as ArrayBuffer]);
    if (!paused && outstanding >= settings.windowBytes && tls) {
      paused = true;
      tls.pause();
    }
  }

  port.on('message', (m: ToWorker) => {
    switch (m.t) {
      case 'write':
        tls?.write(m.data);
        break;
      case 'ack':
        outstanding -= m.bytes;
        if (paused && outstanding < settings.windowBytes) {
          paused = false;
          tls?.resume();
        }
        break;
      case 'end':
        if (tls) tls.end();
        else raw.end();
        break;
      case 'keepalive':
        raw.setKeepAlive(m.enable, m.delayMs);
        break;
      case 'nodelay':
        raw.setNoDelay(m.noDelay);
        break;
      case 'destroy':
        tls?.destroy();
        raw.destroy();
        finish();
        break;
    }
  });

  raw.on('error', fail);
  raw.on('close', () => {
    if (!tls) finish();
  });
  raw.connect(settings.port, settings.host, () => raw.write(SSL_REQUEST));
  raw.once('data', (answer: Buffer) => {
    // node-postgres reads the whole first chunk as the answer: 'S' goes on, 'N' and anything else
    // (an ErrorResponse, or bytes injected after the 'S') fail with its wording.
    const code = answer.toString('utf8');
    if (code !== 'S') {
      fail(new Error(code === 'N' ? 'The server does not support SSL connections' : 'There was an error establishing an SSL connection'));
      return;
    }
    const options: ConnectionOptions = { socket: raw, host: settings.host, ...settings.tls };
    // SNI must not be an IP address (RFC 6066 section 3); the certificate is checked against `host`.
    if (isIP(settings.host) === 0) options.servername = settings.host;
    try {
      tls = tlsConnect(options);
    } catch (err) {
      fail(err as Error);
      return;
    }
    const secured = tls;
    secured.once('secureConnect', () => post({ t: 'connect' }));
    secured.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      bytes += chunk.length;
      // One turn may read many socket buffers: send at read size, so the window is checked as it fills.
      if (bytes >= MAX_CHUNK_BYTES) flush();
      else if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    });
    secured.on('end', () => {
      flush();
      post({ t: 'end' });
    });
    secured.on('error', fail);
    secured.on('close', finish);
  });
}

if (parentPort) run(parentPort, workerData as TlsWorkerSettings);
else throw new Error('pg-tls-worker runs as a worker thread of pg-tls-stream.ts, not as a module of its own');
