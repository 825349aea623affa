/**
 * The reverse window's identities, built here only: its replication slot and publication on the new
 * representation, the replication origin that tags reverse sync's own writes, the fencing scope, the
 * migration name its verification runs under, and the prefix of the rollback's flip marker.
 */
import { ParityError } from '../core/errors.js';
import { type Spec, targetDatabase, targetTable } from '../core/spec.js';

/** PostgreSQL's identifier limit (slot, publication and origin names). */
const NAME_BYTES = 63;

function checked(name: string, what: string, field: string): string {
  if (Buffer.byteLength(name, 'utf8') > NAME_BYTES)
    throw new ParityError('PARITY_BAD_INPUT', `the reverse ${what} name "${name}" is over ${NAME_BYTES} bytes`, {
      hint: `shorten ${field}: reverse sync appends "_reverse" to it`,
    });
  return name;
}

/** The reverse sync's own slot, on the new representation's database. */
export function reverseSlot(spec: Spec): string {
  return checked(`${spec.cdc.slot}_reverse`, 'slot', 'cdc.slot');
}

export function reversePublication(spec: Spec): string {
  return checked(`${spec.cdc.publication}_reverse`, 'publication', 'cdc.publication');
}

/**
 * The replication origin reverse sync's apply session runs under. PostgreSQL stamps every
 * transaction of that session with it and pgoutput sends it (an Origin message after Begin), so the
 * reverse stream recognizes and drops its own writes: no echo, whatever the other writers do.
 */
export function reverseOrigin(spec: Spec): string {
  return checked(`parity_reverse_${spec.name}`, 'replication origin', 'name');
}

/** The fencing scope of reverse sync's writes (a contract or a newer reverse sync fences it out). */
export function reverseScope(spec: Spec): string {
  return `${spec.name}/reverse`;
}

/** The migration name reverse verification runs and records under, apart from the forward runs. */
export function reverseVerifyName(spec: Spec): string {
  return `${spec.name}-reverse`;
}

/** The transactional logical message a rollback writes to mark its flip position. */
export const FLIP_PREFIX = 'parity.reverse.flip';

/** The new representation: the table reverse sync streams from, and the old one it writes to. */
export function windowTables(spec: Spec): { from: { schema: string; table: string }; to: { schema: string; table: string } } {
  return { from: targetTable(spec), to: { schema: spec.source.schema, table: spec.source.table } };
}

/**
 * The database holding the new representation: its WAL is what reverse sync streams (slot,
 * publication, the rollback's flip marker). The old side (window tables, fences, positions, the
 * apply) is always the source database.
 */
export function newSideDatabase(spec: Spec): string {
  return targetDatabase(spec);
}

/** Reverse sync needs the spec's reverse mapping (every target kind is covered). */
export function assertWindowKind(spec: Spec): void {
  if (!spec.reverse)
    throw new ParityError('PARITY_BAD_INPUT', 'the spec has no reverse section: there is no way to rebuild the old representation', {
      hint: 'add reverse: { mapping: { <old column>: <SQL over the new row> } } beside mapping, and check it with parity spec check-roundtrip',
    });
}
