import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { ensureTopics } from '../../../connectors/kafka-sink/admin.js';
import { protobufCodec } from '../../../connectors/kafka-sink/protobuf-runtime.js';
import { frameProtobuf } from '../../../connectors/kafka-sink/protobuf-wire.js';
import { compatGate } from '../../../services/compat-gate/cli.js';
import type { GateReport } from '../../../services/compat-gate/gate.js';
import { checkLiveEvents } from '../../../services/compat-gate/live.js';
import { createCcompatClient } from '../../../services/compat-gate/registry-client.js';
import { checkSubject } from '../../../services/compat-gate/registry.js';
import { createKafka } from '../../../services/core/clients.js';
import { writeTestSpec } from '../../support/spec.js';
import { KAFKA_BROKERS, STACK, uniqueName } from '../../support/stack.js';

/**
 * Protobuf against the real registry (Apicurio's Confluent-compatible API) and the real Kafka: the
 * registry refuses what the local checker predicts it refuses, and the live check reads Confluent-framed
 * events (message indexes included) per consumer.
 */

const registry = createCcompatClient(STACK.PARITY_REGISTRY_URL);
const kafka = createKafka(KAFKA_BROKERS, { clientId: 'parity-compat-protobuf-test' });

const v1 = 'syntax = "proto3";\npackage shop;\n\nmessage Order {\n  string id = 1;\n  int64 total_minor = 2;\n}\n';
// total_minor becomes a string: another wire group, unreadable for v1 readers and v1 data alike.
const v2Incompatible = 'syntax = "proto3";\npackage shop;\n\nmessage Order {\n  string id = 1;\n  string total_minor = 2;\n}\n';
// Adds an optional field and widens nothing: compatible both ways for Confluent.
const v2Compatible =
  'syntax = "proto3";\npackage shop;\n\nmessage Order {\n  string id = 1;\n  int64 total_minor = 2;\n  string currency = 3;\n}\n';

describe('Protobuf subjects on the real registry', () => {
  test('an incompatible version is rejected with 409 after the level is set through REST, and the local check predicted it', async () => {
    const subject = `${uniqueName('compat-proto')}-value`;
    await registry.setLevel(subject, 'BACKWARD');
    expect(await registry.getLevel(subject)).toBe('BACKWARD');
    expect((await registry.register(subject, v1, 'PROTOBUF')).status).toBe(200);

    const check = await checkSubject(registry, { subject, type: 'protobuf', level: 'BACKWARD', candidate: v2Incompatible });
    expect(check.local.messages).toEqual([
      expect.objectContaining({
        rule: 'FIELD_SCALAR_KIND_CHANGED',
        location: '#/Order/2',
        fieldPath: 'Order.total_minor',
        direction: 'backward',
        version: 1,
      }),
    ]);
    expect(check.registry.compatible).toBe(false);
    expect(check.findings.map((f) => f.kind)).toEqual(['incompatible']);

    const rejected = await registry.register(subject, v2Incompatible, 'PROTOBUF');
    expect(rejected.status).toBe(409);
    expect(await registry.versions(subject)).toEqual([1]);

    // A field addition: Confluent accepts it under BACKWARD, and so does Apicurio; it registers.
    const ok = await checkSubject(registry, { subject, type: 'protobuf', level: 'BACKWARD', candidate: v2Compatible });
    expect([ok.local.compatible, ok.registry.compatible]).toEqual([true, true]);
    expect((await registry.register(subject, v2Compatible, 'PROTOBUF')).status).toBe(200);
  });

  // Apicurio checks Protobuf with protolock's rules, stricter than Confluent's in these places (see
  // test/unit/compat-gate/protobuf-compat.test.ts); the gate follows Confluent and reports the
  // disagreement, so nobody is surprised by a registration the local check called fine.
  test.each([
    ['a field rename', 'BACKWARD', 'message Order {\n  string id = 1;\n  int64 amount = 2;\n}\n'],
    ['a field number change', 'BACKWARD', 'message Order {\n  string id = 1;\n  int64 total_minor = 3;\n}\n'],
    ['a removal without reserved', 'BACKWARD', 'message Order {\n  string id = 1;\n}\n'],
    ['a field addition under FORWARD', 'FORWARD', 'message Order {\n  string id = 1;\n  int64 total_minor = 2;\n  string note = 3;\n}\n'],
    ['int64 -> int32 (one wire group)', 'BACKWARD', 'message Order {\n  string id = 1;\n  int32 total_minor = 2;\n}\n'],
  ] as const)('Apicurio rejects %s, Confluent accepts it: reported as a registry disagreement', async (_label, level, body) => {
    const subject = `${uniqueName('compat-proto')}-value`;
    await registry.setLevel(subject, level);
    expect((await registry.register(subject, v1, 'PROTOBUF')).status).toBe(200);
    const check = await checkSubject(registry, {
      subject,
      type: 'protobuf',
      level,
      candidate: `syntax = "proto3";\npackage shop;\n\n${body}`,
    });
    expect([check.local.compatible, check.registry.compatible]).toEqual([true, false]);
    expect(check.findings.map((f) => f.kind)).toEqual(['registry-disagreement']);
  });

  test('a package change: Confluent rejects it (PACKAGE_CHANGED), Apicurio accepts it: a disagreement the other way', async () => {
    const subject = `${uniqueName('compat-proto')}-value`;
    await registry.setLevel(subject, 'BACKWARD');
    expect((await registry.register(subject, v1, 'PROTOBUF')).status).toBe(200);
    const check = await checkSubject(registry, {
      subject,
      type: 'protobuf',
      level: 'BACKWARD',
      candidate: v1.replace('package shop;', 'package shop.v2;'),
    });
    expect(check.local.messages.map((m) => `${m.rule} ${m.location}`)).toEqual(['PACKAGE_CHANGED #/']);
    expect(check.registry.compatible).toBe(true);
    expect(check.findings.map((f) => f.kind).sort()).toEqual(['incompatible', 'registry-disagreement']);
  });

  test('imports travel as subject references: a changed imported message is seen through them', async () => {
    const moneySubject = uniqueName('compat-proto-money');
    const money1 = 'syntax = "proto3";\npackage shop.common;\n\nmessage Money {\n  int64 units = 1;\n}\n';
    const money2 = 'syntax = "proto3";\npackage shop.common;\n\nmessage Money {\n  string units = 1;\n}\n';
    await registry.setLevel(moneySubject, 'NONE');
    expect((await registry.register(moneySubject, money1, 'PROTOBUF')).status).toBe(200);
    expect((await registry.register(moneySubject, money2, 'PROTOBUF')).status).toBe(200);
    const order =
      'syntax = "proto3";\npackage shop;\n\nimport "shop/common/money.proto";\n\nmessage Order {\n  string id = 1;\n  .shop.common.Money total = 2;\n}\n';
    const subject = `${uniqueName('compat-proto')}-value`;
    await registry.setLevel(subject, 'BACKWARD');
    const ref = (version: number) => [{ name: 'shop/common/money.proto', subject: moneySubject, version }];
    expect((await registry.register(subject, order, 'PROTOBUF', ref(1))).status).toBe(200);

    const same = await checkSubject(registry, { subject, type: 'protobuf', level: 'BACKWARD', candidate: order });
    expect(same.local.compatible).toBe(true);
    const moved = await checkSubject(registry, { subject, type: 'protobuf', level: 'BACKWARD', candidate: order, references: ref(2) });
    expect(moved.local.messages.map((m) => `${m.rule} ${m.location}`)).toEqual([
      'FIELD_SCALAR_KIND_CHANGED #/Money/1',
      'FIELD_NAMED_TYPE_CHANGED #/Order/2',
    ]);
    // Apicurio 3.3's compatibility endpoint answers 422 for a Protobuf candidate with references
    // (registration with the same references works): the gate reports that it cannot know the
    // registry's verdict instead of failing or calling it a disagreement.
    for (const check of [same, moved]) {
      expect(check.registry.refused?.status).toBe(422);
      expect(check.findings.map((f) => f.kind)).toContain('registry-refused');
      expect(check.findings.map((f) => f.kind)).not.toContain('registry-disagreement');
    }
  });
});

test('live: a v1 Protobuf consumer reads v1 events, and the v2 events it cannot read are flagged', async () => {
  const topic = uniqueName('compat-live-proto');
  const subject = `${topic}-value`;
  await ensureTopics(kafka, [topic], 2);
  // A deliberately breaking change has to be let in for the stream to carry it.
  await registry.setLevel(subject, 'NONE');
  const twoTypes = (order: string) => `${order}\nmessage Refund {\n  string order_id = 1;\n}\n`;
  const id1 = (await registry.register(subject, twoTypes(v1), 'PROTOBUF')).id as number;
  const id2 = (await registry.register(subject, twoTypes(v2Incompatible), 'PROTOBUF')).id as number;
  const c1 = protobufCodec(twoTypes(v1));
  const c2 = protobufCodec(twoTypes(v2Incompatible));
  const enc = (codec: typeof c1, indexes: number[], value: Record<string, unknown>) => {
    const type = codec.typeAt(indexes);
    return type.encode(type.fromObject(value)).finish();
  };

  const producer = kafka.producer({ idempotent: true });
  await producer.send({
    messages: [
      ...Array.from({ length: 12 }, (_, i) => ({
        topic,
        key: `a${i}`,
        value: frameProtobuf(id1, [0], enc(c1, [0], { id: `o${i}`, total_minor: 100 + i })),
      })),
      // The second message type: its index [1] must survive the framing for the event to decode.
      ...Array.from({ length: 3 }, (_, i) => ({
        topic,
        key: `r${i}`,
        value: frameProtobuf(id1, [1], enc(c1, [1], { order_id: `o${i}` })),
      })),
      ...Array.from({ length: 7 }, (_, i) => ({
        topic,
        key: `b${i}`,
        value: frameProtobuf(id2, [0], enc(c2, [0], { id: `p${i}`, total_minor: `${i}.50` })),
      })),
    ],
  });
  await producer.close();

  const report = await checkLiveEvents({
    kafka,
    registry,
    topic,
    consumers: [
      { name: 'billing-v1', readerSchema: twoTypes(v1) },
      { name: 'audit-v2', readerSchema: twoTypes(v2Incompatible) },
    ],
    sample: { perPartition: 1000, timeoutMs: 60_000 },
  });
  expect(report.complete).toBe(true);
  expect(report.sampled).toBe(22);
  expect(report.undecodable).toEqual([]);
  expect(report.byVersion).toEqual([
    { schemaId: id1, version: 1, events: 15 },
    { schemaId: id2, version: 2, events: 7 },
  ]);
  const billing = report.consumers.find((c) => c.consumer === 'billing-v1');
  expect(billing?.byVersion).toEqual([
    { schemaId: id1, version: 1, events: 15, readable: 15, failed: 0 },
    expect.objectContaining({
      schemaId: id2,
      version: 2,
      events: 7,
      readable: 0,
      failed: 7,
      firstError: expect.stringContaining('FIELD_SCALAR_KIND_CHANGED at #/Order/2'),
    }),
  ]);
  // The v2 reader cannot read v1's int64 either: the same wire-group gap seen from the other side.
  const audit = report.consumers.find((c) => c.consumer === 'audit-v2');
  expect(audit).toMatchObject({ readable: 7, failed: 15 });
  expect(
    report.findings
      .filter((f) => f.kind === 'consumer-cannot-read')
      .map((f) => f.consumer)
      .sort(),
  ).toEqual(['audit-v2', 'billing-v1']);
});

describe('parity compat gate with a Protobuf subject', () => {
  beforeAll(() => {
    for (const [key, value] of Object.entries(STACK)) vi.stubEnv(key, String(value));
  });
  afterAll(() => vi.unstubAllEnvs());

  test('registry, local checker, consumers, live events and the semantic-change rule, end to end through the CLI', async () => {
    const topic = uniqueName('compat-gate-proto');
    const subject = `${topic}-value`;
    await ensureTopics(kafka, [topic], 1);
    await registry.setLevel(subject, 'BACKWARD');
    const id = (await registry.register(subject, v1, 'PROTOBUF')).id as number;
    const codec = protobufCodec(v1);
    const type = codec.typeAt([0]);
    const producer = kafka.producer();
    await producer.send({
      messages: Array.from({ length: 6 }, (_, i) => ({
        topic,
        key: String(i),
        value: frameProtobuf(id, [0], type.encode(type.fromObject({ id: `o${i}`, total_minor: i })).finish()),
      })),
    });
    await producer.close();

    const candidate =
      'syntax = "proto3";\npackage shop;\n\nmessage Order {\n  string id = 1;\n  int64 total_minor = 2;\n  string currency = 3;\n  int64 total_with_tax_minor = 4;\n}\n';
    // A consumer built for a version that never existed: total_minor as a string.
    const stale = 'syntax = "proto3";\npackage shop;\n\nmessage Order {\n  string id = 1;\n  string total_minor = 2;\n}\n';
    const spec = writeTestSpec({
      name: uniqueName('gate-proto').replace(/_/g, '-'),
      events: {
        subjects: [
          {
            subject,
            compatibility: 'BACKWARD',
            type: 'protobuf',
            schema: 'candidate.proto',
            consumers: [
              { name: 'billing', readerSchema: 'billing.proto' },
              { name: 'stale', readerSchema: 'stale.proto' },
            ],
          },
        ],
        semanticChanges: [{ field: 'total_minor', description: 'pre-tax -> with tax', via: 'new-field', newField: 'total_with_tax_minor' }],
      },
    });
    for (const [name, text] of Object.entries({ 'candidate.proto': candidate, 'billing.proto': v1, 'stale.proto': stale }))
      writeFileSync(join(dirname(spec.path), name), text);

    const out: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out.push(String(chunk));
      return true;
    });
    let code: number;
    try {
      code = await compatGate(['--spec', spec.path, '--json', '--skip-evidence', '--timeout-ms', '60000']);
    } finally {
      vi.restoreAllMocks();
    }
    const report = JSON.parse(out.join('')) as GateReport;
    expect(report.rows.map((r) => `${r.consumer} ${r.check} ${r.verdict}`)).toEqual([
      '(registry) registry ok',
      'billing schema ok',
      'stale schema FAIL',
      'billing live ok',
      'stale live FAIL',
      'total_minor semantic ok',
    ]);
    expect(report.rows.find((r) => r.consumer === 'billing' && r.check === 'live')?.detail).toContain('6 readable, 0 failed');
    expect(report.findings.map((f) => `${f.kind}:${f.consumer ?? ''}`)).toEqual([
      'consumer-cannot-read:stale',
      'consumer-cannot-read:stale',
    ]);
    expect(code).toBe(1);
  });
});
