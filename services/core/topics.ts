/**
 * Every Kafka topic name parity reads or writes, built here and nowhere else. All of them start with
 * the spec's `cdc.topicPrefix`:
 *
 * | topic | written by | read by |
 * |---|---|---|
 * | `<prefix>.<schema>.<table>` | `parity cdc run` (Debezium's convention) | reconciler, cache versioner, demo |
 * | `<prefix>.transaction` | `parity cdc run` with `provide.transaction.metadata` (Debezium's BEGIN/END records) | consumers |
 * | `<prefix>.message` | `parity cdc run` (debezium encoding): logical decoding messages, as Debezium writes them | consumers |
 * | `<prefix>.parity.mismatches` | reconciler, client dark reads | operators |
 * | `<prefix>.parity.dlq.<service>.<migration>` | reconciler (`reconciler`), cache versioner (`cache`) | operators |
 *
 * Dead-letter topics, decided once: parity's own topics live under `<prefix>.parity.`, and a dead
 * letter names the service and migration that refused it, so two services or two migrations on one
 * prefix never mix their dead letters (the `parity.dlq.*` headers still say where each came from).
 * Before this, the reconciler wrote `<prefix>.parity.dlq` and the cache versioner
 * `<prefix>.dlq.cache-<migration>`; no parity component reads a dead-letter topic back, so nothing
 * depends on those names at run time; a deployment whose alerts or tools watch the cache versioner's
 * old name keeps it with `parity cache run --dead-letter-topic` (LEGACY_DEAD_LETTER_TOPICS lists both
 * old names for such tools).
 */

/** Topic of a table's change events: `<prefix>.<schema>.<table>` (Debezium's convention). */
export function changeTopic(prefix: string, schema: string, table: string): string {
  return `${prefix}.${schema}.${table}`;
}

/** Debezium's transaction-metadata topic: `<prefix>.transaction` (`provide.transaction.metadata`). */
export function transactionTopic(prefix: string): string {
  return `${prefix}.transaction`;
}

/** Debezium's topic of logical decoding messages (`pg_logical_emit_message`): `<prefix>.message`. */
export function messageTopic(prefix: string): string {
  return `${prefix}.message`;
}

/** Where the reconciler and client dark reads publish mismatches. */
export function mismatchTopic(prefix: string): string {
  return `${prefix}.parity.mismatches`;
}

/** The services that dead-letter change events they cannot process. */
export type DeadLetterService = 'reconciler' | 'cache';

/** Dead letters of one service for one migration: `<prefix>.parity.dlq.<service>.<migration>`. */
export function deadLetterTopic(prefix: string, service: DeadLetterService, migration: string): string {
  return `${prefix}.parity.dlq.${service}.${migration}`;
}

/** The dead-letter topic names used before deadLetterTopic (for `--dead-letter-topic` when an old name must stay). */
export const LEGACY_DEAD_LETTER_TOPICS = {
  reconciler: (prefix: string): string => `${prefix}.parity.dlq`,
  cache: (prefix: string, migration: string): string => `${prefix}.dlq.cache-${migration}`,
} as const;
