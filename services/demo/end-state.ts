/**
 * The demo's exactness check on events: after the writers stop and CDC catches up, the newest
 * event of every key in Kafka must equal the row in the database (or be a delete when the row is
 * gone). A lost, reordered or mangled change shows up here as a mismatch.
 */
import type pg from 'pg';
import type { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import { readTopic } from '../../connectors/kafka-sink/admin.js';
import { createChangeDecoder, type DecodedChange } from '../../connectors/kafka-sink/serde.js';
import type { KafkaClients } from '../core/clients.js';
import { ParityError } from '../core/errors.js';
import { comparePositions } from '../core/lsn.js';

export interface EventCheck {
  events: number;
  keysInKafka: number;
  rowsInDatabase: number;
  /** Rows whose newest event differs from the database (or has no event at all). */
  mismatched: number;
  /** Keys whose newest event is a create/update but the row no longer exists. */
  resurrected: number;
  samples: string[];
}

const text = (v: unknown) => (v === null || v === undefined ? 'null' : String(v));

export async function checkEventsAgainstDatabase(options: {
  kafka: KafkaClients;
  registry: SchemaRegistry;
  /** The registry's REST URL: Debezium-encoded Avro events read back exactly with it (serde.ts). */
  registryUrl?: string;
  topic: string;
  db: pg.Pool;
  columns: string[];
}): Promise<EventCheck> {
  const decoder = createChangeDecoder(options.registry, options.registryUrl ? { registryUrl: options.registryUrl } : {});
  const latest = new Map<string, DecodedChange>();
  let events = 0;
  const { complete } = await readTopic(
    options.kafka,
    options.topic,
    async (message) => {
      // A tombstone (no value) follows a delete event: the delete itself says what happened.
      if (!message.value) return;
      const change = await decoder.decode(options.topic, message);
      events++;
      if (!change.key) return;
      const id = text(change.key.id);
      const previous = latest.get(id);
      if (!previous || comparePositions(change.position, previous.position) > 0) latest.set(id, change);
    },
    { timeoutMs: 120_000 },
  );
  if (!complete)
    throw new ParityError('PARITY_KAFKA', `could not read ${options.topic} to its end within 120 s`, {
      hint: 'check the Kafka broker; the demo check reads the whole change topic',
    });
  const { rows } = await options.db.query(`SELECT ${options.columns.map((c) => `${c}::text AS ${c}`).join(', ')} FROM orders`);
  const inDb = new Set<string>();
  let mismatched = 0;
  const samples: string[] = [];
  for (const row of rows as Record<string, string | null>[]) {
    const id = text(row.id);
    inDb.add(id);
    const change = latest.get(id);
    const after = change && change.envelope.op !== 'd' ? change.envelope.after : null;
    const differs = !after || options.columns.some((c) => text(after[c]) !== text(row[c]));
    if (differs) {
      mismatched++;
      if (samples.length < 5) samples.push(`id ${id}: database ${JSON.stringify(row)} vs newest event ${JSON.stringify(after)}`);
    }
  }
  let resurrected = 0;
  for (const [id, change] of latest) {
    if (!inDb.has(id) && change.envelope.op !== 'd') {
      resurrected++;
      if (samples.length < 5) samples.push(`id ${id}: deleted in the database, newest event is op ${change.envelope.op}`);
    }
  }
  return { events, keysInKafka: latest.size, rowsInDatabase: rows.length, mismatched, resurrected, samples };
}
