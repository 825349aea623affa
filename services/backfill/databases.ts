/**
 * The three databases a backfill talks to (source, target, control) and the dedicated connections
 * each worker holds. Roles that name the same database share one pool and one connection per worker,
 * which is what lets a batch, its checkpoint and its fence check commit in one transaction.
 */
import type pg from 'pg';
import { createPgPool } from '../core/clients.js';
import { controlDatabase, targetDatabase, type Spec } from '../core/spec.js';

export type Role = 'source' | 'target' | 'control';

/** Pools a caller (the coordinator, the demo) already has; missing roles are opened from the spec. */
export interface BackfillPools {
  source?: pg.Pool;
  target?: pg.Pool;
  control?: pg.Pool;
}

/** The application_name of every backfill session; the load check leaves these out of its count. */
export const APPLICATION_NAME = 'parity-backfill';

/** Host, port, database and user of a URL: two URLs with the same identity reach the same database. */
export function databaseIdentity(url: string): string {
  const u = new URL(url);
  const db = decodeURIComponent(u.pathname.replace(/^\//, '')) || decodeURIComponent(u.username);
  return `${u.hostname.toLowerCase()}:${u.port || '5432'}/${db}@${decodeURIComponent(u.username)}`;
}

/** Session settings that make `::text` round-trips exact and identify backfill sessions. */
function sessionSetup(applicationName: string, statementTimeoutMs: number): string {
  return [
    `SET application_name = '${applicationName}'`,
    `SET statement_timeout = ${Math.floor(statementTimeoutMs)}`,
    `SET DateStyle = 'ISO, MDY'`,
    `SET IntervalStyle = 'postgres'`,
    `SET TimeZone = 'UTC'`,
    'SET extra_float_digits = 3',
    `SET bytea_output = 'hex'`,
  ].join('; ');
}

const SESSION_RESET = [
  'application_name',
  'statement_timeout',
  'default_transaction_read_only',
  'DateStyle',
  'IntervalStyle',
  'TimeZone',
  'extra_float_digits',
  'bytea_output',
]
  .map((s) => `RESET ${s}`)
  .join('; ');

/** A checked-out connection; `release(broken)` returns it (or destroys it when it failed). */
export interface Session {
  client: pg.PoolClient;
  release(broken?: boolean): void;
}

export interface WorkerSessions {
  source: pg.ClientBase;
  target: pg.ClientBase;
  control: pg.ClientBase;
  /** Distinct connections, in commit order: target, then source, then control. */
  commitOrder: pg.ClientBase[];
  release(broken?: boolean): void;
}

export class Databases {
  private readonly pools = new Map<string, pg.Pool>();
  private readonly owned: pg.Pool[] = [];
  private readonly identity: Record<Role, string>;

  constructor(
    spec: Spec,
    given: BackfillPools,
    private readonly statementTimeoutMs: number,
    poolSize: number,
  ) {
    const urls: Record<Role, string> = { source: spec.source.database, target: targetDatabase(spec), control: controlDatabase(spec) };
    this.identity = {
      source: databaseIdentity(urls.source),
      target: databaseIdentity(urls.target),
      control: databaseIdentity(urls.control),
    };
    for (const role of ['source', 'target', 'control'] as const) {
      const id = this.identity[role];
      const pool = given[role];
      if (pool && !this.pools.has(id)) this.pools.set(id, pool);
    }
    for (const role of ['source', 'target', 'control'] as const) {
      const id = this.identity[role];
      if (this.pools.has(id)) continue;
      const pool = createPgPool(urls[role], { applicationName: APPLICATION_NAME, max: poolSize });
      this.pools.set(id, pool);
      this.owned.push(pool);
    }
  }

  /** True when two roles are the same database (and so share connections and transactions). */
  same(a: Role, b: Role): boolean {
    return this.identity[a] === this.identity[b];
  }

  /** One dedicated, configured connection to a role's database. */
  async session(role: Role, applicationName = APPLICATION_NAME): Promise<Session> {
    const pool = this.pools.get(this.identity[role]) as pg.Pool;
    const client = await pool.connect();
    try {
      await client.query(sessionSetup(applicationName, this.statementTimeoutMs));
    } catch (err) {
      client.release(true);
      throw err;
    }
    // An idle checked-out client losing its server must not crash the process; its next query fails.
    // Removed on release (the pool has its own for idle clients): a client checked out again and
    // again would otherwise gather one listener per checkout.
    const ignore = () => undefined;
    client.on('error', ignore);
    let released = false;
    return {
      client,
      release(broken = false) {
        if (released) return;
        released = true;
        client.removeListener('error', ignore);
        if (broken) return client.release(true);
        client.query(SESSION_RESET).then(
          () => client.release(),
          () => client.release(true),
        );
      },
    };
  }

  /** A worker's connections: one per distinct database among source, target and control. */
  async workerSessions(): Promise<WorkerSessions> {
    const byIdentity = new Map<string, Session>();
    const taken: Session[] = [];
    try {
      for (const role of ['source', 'target', 'control'] as const) {
        const id = this.identity[role];
        if (!byIdentity.has(id)) {
          const s = await this.session(role);
          byIdentity.set(id, s);
          taken.push(s);
        }
      }
    } catch (err) {
      for (const s of taken) s.release(true);
      throw err;
    }
    const get = (role: Role): pg.ClientBase => (byIdentity.get(this.identity[role]) as Session).client;
    const commitOrder: pg.ClientBase[] = [];
    for (const c of [get('target'), get('source'), get('control')]) if (!commitOrder.includes(c)) commitOrder.push(c);
    return {
      source: get('source'),
      target: get('target'),
      control: get('control'),
      commitOrder,
      release: (broken = false) => {
        for (const s of taken) s.release(broken);
      },
    };
  }

  /** Closes the pools this object opened (never the caller's). */
  async close(): Promise<void> {
    await Promise.all(this.owned.map((p) => p.end().catch(() => undefined)));
  }
}
