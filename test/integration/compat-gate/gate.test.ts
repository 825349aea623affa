import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, expect, test, vi } from 'vitest';
import { ensureTopics } from '../../../connectors/kafka-sink/admin.js';
import { createKafka } from '../../../services/core/clients.js';
import { latestEvidence } from '../../../services/core/control.js';
import { encodeAvroDatum } from '../../../services/compat-gate/avro-datum.js';
import { compatGate } from '../../../services/compat-gate/cli.js';
import type { GateReport } from '../../../services/compat-gate/gate.js';
import { createCcompatClient } from '../../../services/compat-gate/registry-client.js';
import { createTestDatabase, KAFKA_BROKERS, STACK, uniqueName, type TestDatabase } from '../../support/stack.js';
import { writeTestSpec } from '../../support/spec.js';

const kafka = createKafka(KAFKA_BROKERS, { clientId: 'parity-compat-gate-test' });
const registry = createCcompatClient(STACK.PARITY_REGISTRY_URL);
let control: TestDatabase;

beforeAll(async () => {
  control = await createTestDatabase('target', 'compat');
  // The command reads the spec the way users run it: ${VAR}s from the environment.
  for (const [key, value] of Object.entries(STACK)) vi.stubEnv(key, String(value));
});
afterAll(async () => {
  await control?.drop();
  vi.unstubAllEnvs();
});
afterEach(() => vi.restoreAllMocks());

const order = (fields: unknown[]) => JSON.stringify({ type: 'record', name: 'Order', namespace: 'shop', fields });
const v1 = order([
  { name: 'id', type: 'long' },
  { name: 'total_amount', type: 'int' },
]);
// The candidate adds the amount in minor units under a new name (the meaning change of total_amount).
const candidate = order([
  { name: 'id', type: 'long' },
  { name: 'total_amount', type: 'int' },
  { name: 'total_amount_minor', type: 'long', default: 0 },
  { name: 'currency', type: 'string', default: 'USD' },
]);
const billingReader = v1;
// A consumer that expects a field no version has ever carried.
const legacyReader = order([
  { name: 'id', type: 'long' },
  { name: 'total_amount', type: 'int' },
  { name: 'region', type: 'string' },
]);

async function topicWithEvents(): Promise<{ topic: string; subject: string }> {
  const topic = uniqueName('compat-gate');
  const subject = `${topic}-value`;
  await ensureTopics(kafka, [topic], 1);
  await registry.setLevel(subject, 'BACKWARD');
  const id = (await registry.register(subject, v1, 'AVRO')).id as number;
  const producer = kafka.producer();
  await producer.send({
    messages: Array.from({ length: 12 }, (_, i) => {
      const header = Buffer.from([0, 0, 0, 0, 0]);
      header.writeInt32BE(id, 1);
      return { topic, key: String(i), value: Buffer.concat([header, encodeAvroDatum(v1, { id: i, total_amount: 100 * i })]) };
    }),
  });
  await producer.close();
  return { topic, subject };
}

function specFor(subject: string, events: Record<string, unknown>, files: Record<string, string>): string {
  const spec = writeTestSpec({
    name: uniqueName('gate').replace(/_/g, '-'),
    'control.database': control.url,
    events: {
      subjects: [{ subject, compatibility: 'BACKWARD', type: 'avro', ...(events.subject as object) }],
      semanticChanges: events.semanticChanges,
    },
  });
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dirname(spec.path), name), text);
  return spec.path;
}

async function runGate(argv: string[]): Promise<{ code: number; report: GateReport }> {
  const out: string[] = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out.push(String(chunk));
    return true;
  });
  const code = await compatGate(argv);
  vi.restoreAllMocks();
  return { code, report: JSON.parse(out.join('')) as GateReport };
}

test('the gate passes when every subject, consumer, live event and semantic change checks out, and records evidence', async () => {
  const { subject } = await topicWithEvents();
  const path = specFor(
    subject,
    {
      subject: { schema: 'candidate.avsc', consumers: [{ name: 'billing', readerSchema: 'billing.avsc' }] },
      semanticChanges: [
        { field: 'total_amount', description: 'cents -> minor units with currency', via: 'new-field', newField: 'total_amount_minor' },
      ],
    },
    { 'candidate.avsc': candidate, 'billing.avsc': billingReader },
  );
  const { code, report } = await runGate(['--spec', path, '--json']);
  expect(report.findings).toEqual([]);
  expect(code).toBe(0);
  expect(report.rows.map((r) => `${r.consumer} ${r.check} ${r.verdict}`)).toEqual([
    '(registry) registry ok',
    'billing schema ok',
    'billing live ok',
    'total_amount semantic ok',
  ]);
  expect(report.rows.find((r) => r.check === 'live')?.detail).toContain('12 readable, 0 failed');

  const db = new pg.Client({ connectionString: control.url });
  await db.connect();
  try {
    const evidence = await latestEvidence(db, 'parity', report.migration, 'compat');
    expect(evidence).toMatchObject({ passed: true, kind: 'compat' });
  } finally {
    await db.end();
  }
});

test('the gate fails on a consumer that cannot read and on a semantic change without its marker, naming each', async () => {
  const { subject } = await topicWithEvents();
  const path = specFor(
    subject,
    {
      subject: {
        schema: 'candidate.avsc',
        consumers: [
          { name: 'billing', readerSchema: 'billing.avsc' },
          { name: 'legacy', readerSchema: 'legacy.avsc' },
        ],
      },
      semanticChanges: [
        { field: 'total_amount', description: 'pre-tax -> post-tax', via: 'marker-field', markerField: 'amount_semantics' },
      ],
    },
    { 'candidate.avsc': candidate, 'billing.avsc': billingReader, 'legacy.avsc': legacyReader },
  );
  const { code, report } = await runGate(['--spec', path, '--json', '--skip-evidence']);
  expect(code).toBe(1);
  expect(report.passed).toBe(false);
  expect(report.rows.filter((r) => r.verdict === 'FAIL').map((r) => `${r.consumer} ${r.check}`)).toEqual([
    'legacy schema',
    'legacy live',
    'total_amount semantic',
  ]);
  expect(report.rows.find((r) => r.consumer === 'legacy' && r.check === 'live')?.detail).toContain('0 readable, 12 failed');
  expect(report.findings.map((f) => `${f.kind}${f.consumer ? `:${f.consumer}` : ''}`).sort()).toEqual([
    'consumer-cannot-read:legacy',
    'consumer-cannot-read:legacy',
    'semantic-change',
  ]);
  expect(report.findings.find((f) => f.kind === 'semantic-change')?.message).toContain('no marker field "amount_semantics"');
});

test('an incompatible candidate fails the gate with the registry and the local checker agreeing, and the table says so', async () => {
  const { subject } = await topicWithEvents();
  const breaking = order([
    { name: 'id', type: 'long' },
    { name: 'total_amount', type: 'int' },
    { name: 'currency', type: 'string' },
  ]);
  const path = specFor(subject, { subject: { schema: 'candidate.avsc' }, semanticChanges: [] }, { 'candidate.avsc': breaking });
  const out: string[] = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out.push(String(chunk));
    return true;
  });
  const code = await compatGate(['--spec', path, '--skip-live', '--skip-evidence']);
  vi.restoreAllMocks();
  const table = out.join('');
  expect(code).toBe(1);
  expect(table).toMatch(/SUBJECT\s+CONSUMER\s+CHECK\s+VERDICT\s+DETAIL/);
  expect(table).toContain('registry incompatible, local 1 incompatibility');
  expect(table).toContain('[incompatible]');
  expect(table).not.toContain('registry-disagreement');
});
