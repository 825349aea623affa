import pg from 'pg';

/**
 * SQL identifier and literal quoting. Every identifier that comes from a spec or the command line
 * goes through here (pg's own escaping), never into SQL text raw.
 */
export function ident(name: string): string {
  return pg.escapeIdentifier(name);
}

/** `schema.table`, both parts quoted. */
export function qualified(schema: string, table: string): string {
  return `${ident(schema)}.${ident(table)}`;
}

export function literal(value: string): string {
  return pg.escapeLiteral(value);
}
