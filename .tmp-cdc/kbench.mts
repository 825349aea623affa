import { Kafka, logLevel, CompressionTypes } from 'kafkajs';
const kafka = new Kafka({ clientId: 'kb', brokers: ['127.0.0.1:19092'], logLevel: logLevel.NOTHING });
const admin = kafka.admin(); await admin.connect();
const topic = 'kbench-' + Date.now();
await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
const value = Buffer.alloc(260, 7); const key = Buffer.alloc(14, 1);
const headers = { 'parity.commit_lsn': '1/CD1C7DD0', 'parity.ordinal': '1234', 'parity.txid': '123456', 'parity.position': '00000001cd1c7dd0:0000001234', 'parity.commit_time_us': '1795271145533123' };
const N = 60000;
async function run(name: string, producers: number, batch: number, idempotent = true, hdrs: any = headers) {
  const ps = await Promise.all(Array.from({ length: producers }, async () => { const p = kafka.producer({ idempotent, maxInFlightRequests: idempotent ? 1 : 5 }); await p.connect(); return p; }));
  const t0 = performance.now(); let encodeMs = 0;
  const perProducer = Math.ceil(N / producers);
  await Promise.all(ps.map(async (p, i) => {
    for (let s = 0; s < perProducer; s += batch) {
      const msgs = Array.from({ length: batch }, (_, j) => ({ key, value, headers: hdrs, partition: producers === 1 ? j % 3 : i % 3 }));
      await p.sendBatch({ acks: -1, topicMessages: [{ topic, messages: msgs }] });
    }
  }));
  const s = (performance.now() - t0) / 1000;
  console.log(`${name}: ${Math.round(N / s)} msg/s`);
  await Promise.all(ps.map((p) => p.disconnect()));
}


await run('3 idem, 2000, no headers', 3, 2000, true, undefined);
await run('3 idem, 2000, 1 header', 3, 2000, true, { 'parity.position': headers['parity.position'] });
await run('3 idempotent (1/partition), batch 2000', 3, 2000);
await admin.deleteTopics({ topics: [topic] }); await admin.disconnect();
