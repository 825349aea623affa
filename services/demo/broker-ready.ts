/**
 * Waits until Kafka really accepts producers: an idempotent producer gets a producer id. A broker
 * that has just started listens before its coordinators are loaded and answers InitProducerId with
 * COORDINATOR_LOAD_IN_PROGRESS (or NOT_COORDINATOR) for a moment; the demo checks this itself before
 * it starts CDC, even when it did not start the stack.
 */
import { createKafka } from '../core/clients.js';
import { ParityError } from '../core/errors.js';
import { sleep } from '../core/retry.js';

/** Resolves with the attempts it took once a producer id was granted; throws after `timeoutMs`. */
export async function waitForProducerId(
  brokers: string[],
  timeoutMs: number,
  options: { everyMs?: number } = {},
): Promise<{ attempts: number; seconds: number }> {
  const kafka = createKafka(brokers, { clientId: 'parity-demo-ready', timeoutMs: 5_000 });
  const started = Date.now();
  let attempts = 0;
  let last = '';
  while (Date.now() - started < timeoutMs) {
    attempts++;
    const producer = kafka.producer({ retries: 0 });
    try {
      const info = await producer.initIdempotentProducer({});
      if (info.producerId >= 0n) return { attempts, seconds: (Date.now() - started) / 1000 };
      last = `producer id ${info.producerId}`;
    } catch (err) {
      last = (err as Error).message;
    } finally {
      await producer.close().catch(() => undefined);
    }
    await sleep(options.everyMs ?? 500);
  }
  throw new ParityError(
    'PARITY_CONNECTION',
    `Kafka (${brokers.join(', ')}) did not grant a producer id within ${Math.round(timeoutMs / 1000)} s; last answer: ${last}`,
    {
      hint: 'check the broker log (parity stack status shows where it runs); a broker that just started needs a few seconds',
    },
  );
}
