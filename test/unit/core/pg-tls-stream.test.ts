/**
 * The pure parts of the replication connection's worker-thread TLS (services/core/pg-tls-stream.ts,
 * issue 16): which URLs it takes over from node-postgres, what URL node-postgres then gets, the
 * PARITY_REPLICATION_TLS switch, where the worker module is found, and that a CA file that cannot be
 * read fails as node-postgres fails. test/integration/stack/replication-tls-worker.test.ts streams
 * through it against a secured PostgreSQL.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { ParityError } from '../../../services/core/errors.js';
import {
  DEFAULT_REPLICATION_TLS,
  pgTlsTakeover,
  replicationTlsFromEnv,
  tlsWorkerUrl,
  WorkerTlsStream,
  workerExecArgv,
  workerTlsTransport,
} from '../../../services/core/pg-tls-stream.js';

const dir = mkdtempSync(join(tmpdir(), 'parity-pg-tls-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const BASE = 'postgres://parity:s3cret@db.example.com:5432/shop';
const CA = '/etc/parity/ca.pem';
const enc = encodeURIComponent;

describe('pgTlsTakeover: which URLs the worker transport takes from node-postgres', () => {
  it('takes sslmode=verify-full to a TCP host; node-postgres gets the URL without its TLS parameters, every other byte kept', () => {
    const url = `${BASE}?application_name=a%20b&sslmode=verify-full&options=-c%20timezone%3DUTC&sslrootcert=${enc(CA)}&connect_timeout=5`;
    const t = pgTlsTakeover(url, {});
    expect(t).toEqual({
      connectionString: `${BASE}?application_name=a%20b&options=-c%20timezone%3DUTC&connect_timeout=5`,
      files: { sslrootcert: CA },
    });
  });

  it('takes the client certificate and key, and uselibpqcompat (which does not change verify-full); no query left is no "?"', () => {
    const url = `${BASE}?sslmode=verify-full&sslcert=${enc('/c.pem')}&sslkey=${enc('/c.key')}&sslrootcert=${enc(CA)}&uselibpqcompat=true`;
    expect(pgTlsTakeover(url, {})).toEqual({
      connectionString: BASE,
      files: { sslcert: '/c.pem', sslkey: '/c.key', sslrootcert: CA },
    });
    // An empty sslrootcert is no file for pg-connection-string either.
    expect(pgTlsTakeover(`${BASE}?sslmode=verify-full&sslrootcert=`, {})?.files).toEqual({});
    expect(pgTlsTakeover(`postgresql://u@127.0.0.1/db?sslmode=verify-full`, {})?.connectionString).toBe('postgresql://u@127.0.0.1/db');
  });

  it('takes a host parameter that names a TCP host (node-postgres connects there, the transport checks that name)', () => {
    expect(pgTlsTakeover(`${BASE}?host=replica.example.com&sslmode=verify-full`, {})?.connectionString).toBe(
      `${BASE}?host=replica.example.com`,
    );
  });

  it('leaves every other TLS setting to node-postgres', () => {
    for (const query of [
      '',
      '?sslmode=disable',
      '?sslmode=allow',
      '?sslmode=prefer',
      '?sslmode=require',
      '?sslmode=verify-ca',
      '?sslmode=no-verify',
      '?sslmode=VERIFY-FULL',
      '?sslmode=verify-full&sslnegotiation=direct',
      '?sslmode=verify-full&ssl=true',
      '?sslmode=verify-full&sslpassword=x',
      '?sslmode=verify-full&sslmode=verify-full',
      `?sslrootcert=${enc(CA)}`,
    ])
      expect(pgTlsTakeover(`${BASE}${query}`, {}), query).toBeNull();
  });

  it('leaves Unix sockets, URLs pg-connection-string re-encodes, and PGSSLNEGOTIATION to node-postgres', () => {
    expect(pgTlsTakeover('postgres://u@/db?sslmode=verify-full', {})).toBeNull();
    expect(pgTlsTakeover('postgres://u@%2Fvar%2Frun%2Fpostgresql/db?sslmode=verify-full', {})).toBeNull();
    expect(pgTlsTakeover(`${BASE}?host=%2Fvar%2Frun%2Fpostgresql&sslmode=verify-full`, {})).toBeNull();
    expect(pgTlsTakeover('socket:/var/run/postgresql?db=x&sslmode=verify-full', {})).toBeNull();
    expect(pgTlsTakeover(`${BASE}?sslmode=verify-full&application_name=a b`, {})).toBeNull();
    expect(pgTlsTakeover(`${BASE}?sslmode=verify-full&application_name=a%zz`, {})).toBeNull();
    expect(pgTlsTakeover('not a url', {})).toBeNull();
    expect(pgTlsTakeover(`${BASE}?sslmode=verify-full`, { PGSSLNEGOTIATION: 'direct' })).toBeNull();
    expect(pgTlsTakeover(`${BASE}?sslmode=verify-full`, { PGSSLNEGOTIATION: '' })).not.toBeNull();
  });

  it('workerTlsTransport gives node-postgres ssl: false (PGSSLMODE cannot add TLS over the transport) and a stream factory', () => {
    const t = workerTlsTransport(`${BASE}?sslmode=verify-full`, {});
    expect(t?.ssl).toBe(false);
    const stream = t!.stream();
    expect(stream).toBeInstanceOf(WorkerTlsStream);
    stream.destroy();
    expect(workerTlsTransport(`${BASE}?sslmode=require`, {})).toBeNull();
  });

  it('a CA file that cannot be read fails when node-postgres creates the connection, with node-postgres own error', () => {
    const missing = join(dir, 'missing-ca.pem');
    const url = `${BASE}?sslmode=verify-full&sslrootcert=${enc(missing)}`;
    const t = workerTlsTransport(url, {})!;
    let theirs: unknown;
    try {
      new pg.Client({ connectionString: url });
    } catch (err) {
      theirs = err;
    }
    expect((theirs as NodeJS.ErrnoException).code).toBe('ENOENT');
    expect(() => new pg.Client({ connectionString: t.connectionString, ssl: t.ssl, stream: t.stream } as pg.ClientConfig)).toThrow(
      (theirs as Error).message,
    );
  });
});

describe('PARITY_REPLICATION_TLS', () => {
  it('worker or node-postgres; unset or empty is the default', () => {
    expect(replicationTlsFromEnv({})).toBe(DEFAULT_REPLICATION_TLS);
    expect(replicationTlsFromEnv({ PARITY_REPLICATION_TLS: '' })).toBe(DEFAULT_REPLICATION_TLS);
    expect(replicationTlsFromEnv({ PARITY_REPLICATION_TLS: 'worker' })).toBe('worker');
    expect(replicationTlsFromEnv({ PARITY_REPLICATION_TLS: 'node-postgres' })).toBe('node-postgres');
  });

  it('anything else is bad input naming the variable and its values (exit 2, not retried)', () => {
    let err: unknown;
    try {
      replicationTlsFromEnv({ PARITY_REPLICATION_TLS: 'off' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ParityError);
    const e = err as ParityError;
    expect(e.code).toBe('PARITY_BAD_INPUT');
    expect(e.exitCode).toBe(2);
    expect(e.retriable).toBe(false);
    expect(e.message).toBe('PARITY_REPLICATION_TLS must be worker or node-postgres, got "off"');
    expect(e.hint).toContain('unset PARITY_REPLICATION_TLS');
  });
});

describe('tlsWorkerUrl: the worker module next to the transport', () => {
  const base = (d: string) => pathToFileURL(join(d, 'pg-tls-stream.js')).href;

  it('the compiled .js when it is there (dist/), else the .ts source (vitest, Node strips its types)', () => {
    const both = join(dir, 'both');
    mkdirSync(both);
    writeFileSync(join(both, 'pg-tls-worker.js'), '');
    writeFileSync(join(both, 'pg-tls-worker.ts'), '');
    expect(tlsWorkerUrl(base(both)).pathname).toMatch(/\/both\/pg-tls-worker\.js$/);
    const sources = join(dir, 'sources');
    mkdirSync(sources);
    writeFileSync(join(sources, 'pg-tls-worker.ts'), '');
    expect(tlsWorkerUrl(base(sources)).pathname).toMatch(/\/sources\/pg-tls-worker\.ts$/);
  });

  it('neither: an error that says to rebuild', () => {
    const empty = join(dir, 'empty');
    mkdirSync(empty);
    expect(() => tlsWorkerUrl(base(empty))).toThrow(/TLS worker module is missing .*npm run build/);
  });

  it('from the sources as this test runs them: the .ts beside pg-tls-stream.ts', () => {
    const url = tlsWorkerUrl();
    expect(existsSync(url)).toBe(true);
    expect(url.pathname).toMatch(/services\/core\/pg-tls-worker\.(ts|js)$/);
  });
});

describe('workerExecArgv: the Node options the worker starts with', () => {
  it("inherits the parent's (undefined) unless the parent has --input-type, which a worker started from a file refuses", () => {
    expect(workerExecArgv(['--max-semi-space-size=16', '--import', 'tsx'])).toBeUndefined();
    expect(workerExecArgv(['-e', 'x()'])).toBeUndefined();
    expect(workerExecArgv([])).toBeUndefined();
  });

  it('with --input-type: drops it and -e/-p with their code, keeps the rest', () => {
    expect(workerExecArgv(['--input-type=module', '-e', 'await x()', '--import', 'tsx'])).toEqual(['--import', 'tsx']);
    expect(workerExecArgv(['--input-type', 'module', '--print', '1', '--eval=2', '--enable-source-maps'])).toEqual([
      '--enable-source-maps',
    ]);
  });
});
