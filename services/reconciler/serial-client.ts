/**
 * A pg client shared by concurrent callers (progress polling, attempt logging, finalization) with
 * its queries run one after another: pg would queue them anyway, but warns that concurrent
 * queries on one client are going away.
 */
import type pg from 'pg';

export type Queryable = Pick<pg.ClientBase, 'query'>;

export function serialize(client: pg.ClientBase): Queryable {
  let tail: Promise<unknown> = Promise.resolve();
  return {
    query: ((...args: unknown[]) => {
      const run = tail.then(() => (client.query as (...a: unknown[]) => Promise<unknown>)(...args));
      tail = run.catch(() => undefined);
      return run;
    }) as pg.ClientBase['query'],
  };
}
