/**
 * The envelope, source block, transaction block and transaction-metadata records against Debezium
 * 3.6.0's own output (test/conformance/debezium-3.6.0), compared as JsonConverter text.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { connectJsonDocument, connectSchemaJson, connectValueJson } from '../../../connectors/kafka-sink/connect-json.js';
import {
  SOURCE_SCHEMA,
  TRANSACTION_BLOCK_SCHEMA,
  TRANSACTION_KEY_SCHEMA,
  TRANSACTION_VALUE_SCHEMA,
  envelope,
  envelopeSchema,
  rowSchema,
  sourceBlock,
  transactionBlock,
  transactionRecord,
} from '../../../connectors/kafka-sink/debezium-envelope.js';

const DIR = fileURLToPath(new URL('../../conformance/debezium-3.6.0/', import.meta.url));
const events = JSON.parse(readFileSync(`${DIR}all-types.change-events.json`, 'utf8')) as { key: string; value: string }[];
const transactions = JSON.parse(readFileSync(`${DIR}all-types.transactions.json`, 'utf8')) as { key: string; value: string }[];

/** Debezium's schema text with the before/after row structs replaced by a marker. */
function withoutRows(schemaText: string): string {
  return schemaText.replace(
    /\{"type":"struct","fields":\[\{"type":"int32","optional":false,"field":"id"\}.*?"name":"dbz\.public\.all_types\.Value","field":"(before|after)"\}/g,
    'ROW:$1',
  );
}

describe('Debezium 3.6 envelope (JsonConverter text)', () => {
  it('envelope schema: fields, order, names and versions', () => {
    const doc = JSON.parse(events[4]!.value) as { schema: unknown };
    const theirs = withoutRows(JSON.stringify(doc.schema));
    const ours = connectSchemaJson(envelopeSchema('dbz.public.all_types', rowSchema('dbz.public.all_types', [])));
    const marked = ours.replace(
      /\{"type":"struct","fields":\[\],"optional":true,"name":"dbz\.public\.all_types\.Value","field":"(before|after)"\}/g,
      'ROW:$1',
    );
    expect(marked).toBe(theirs);
  });

  it('source and transaction blocks of a streamed update', () => {
    const payload = (JSON.parse(events[4]!.value) as { payload: { source: Record<string, unknown>; transaction: unknown } }).payload;
    const text = events[4]!.value;
    const src = sourceBlock({
      version: '3.6.0.Final',
      name: 'dbz',
      db: 'dbzconf',
      schema: 'public',
      table: 'all_types',
      commitMicros: BigInt(payload.source.ts_us as number),
      snapshot: 'false',
      txId: 782n,
      lsn: 39907160n,
      lastCommitLsn: 39907160n,
    });
    expect(text).toContain(`"source":${connectValueJson(SOURCE_SCHEMA, src)}`);
    expect(text).toContain(`"transaction":${connectValueJson(TRANSACTION_BLOCK_SCHEMA, transactionBlock(782n, 39907160n, 1, 1))}`);
  });

  it("a snapshot source block keeps Debezium's marker and a null first sequence element", () => {
    const text = events[0]!.value;
    const src = sourceBlock({
      version: '3.6.0.Final',
      name: 'dbz',
      db: 'dbzconf',
      schema: 'public',
      table: 'all_types',
      commitMicros: 1796585788431558n,
      snapshot: 'first',
      txId: 780n,
      lsn: 39905816n,
      lastCommitLsn: null,
    });
    expect(text).toContain(`"source":${connectValueJson(SOURCE_SCHEMA, src)}`);
  });

  it('the envelope tail: op and the processing timestamps', () => {
    const env = envelope('u', null, null, {}, null, 1796585862669364703n);
    expect(connectValueJson({ type: 'int64', optional: true }, env.ts_us)).toBe('1796585862669364');
    expect(events[4]!.value.endsWith(`"op":"u","ts_ms":1796585862669,"ts_us":1796585862669364,"ts_ns":1796585862669364703}}`)).toBe(true);
  });

  it('transaction metadata records: BEGIN and END', () => {
    const begin = transactionRecord('BEGIN', '781:39905912', 1796585862321n);
    expect(connectJsonDocument(TRANSACTION_KEY_SCHEMA, begin.key)).toBe(transactions[0]!.key);
    expect(connectJsonDocument(TRANSACTION_VALUE_SCHEMA, begin.value)).toBe(transactions[0]!.value);
    const end = transactionRecord('END', '781:39907160', 1796585862321n, { total: 1, perCollection: [['public.all_types', 1]] });
    expect(connectJsonDocument(TRANSACTION_VALUE_SCHEMA, end.value)).toBe(transactions[1]!.value);
  });

  it('a delete is followed by a tombstone (null value) with the same key', () => {
    expect(events[5]!.value).toContain('"op":"d"');
    expect(events[6]!.value).toBeNull();
    expect(events[6]!.key).toBe(events[5]!.key);
  });
});
