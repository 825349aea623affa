import { describe, expect, it } from 'vitest';
import type { KafkaProducer } from '../../../services/core/clients.js';
import { createDarkReader } from '../../../services/client/dark-read.js';
import { createMetricsRegistry } from '../../../services/core/metrics.js';

type Path = () => Promise<unknown>;

/** Counts calls of one read path; `behaviour` decides what a call does. */
function counted(behaviour: () => Promise<unknown>): { fn: Path; calls: () => number } {
  let n = 0;
  return {
    fn: () => {
      n++;
      return behaviour();
    },
    calls: () => n,
  };
}

const value =
  (v: unknown, ms = 0) =>
  () =>
    new Promise((resolve) => setTimeout(() => resolve(v), ms));
const failure = (message: string) => () => Promise.reject(new Error(message));
const throwsSync = (message: string) => () => {
  throw new Error(message);
};

async function metricText(registry: ReturnType<typeof createMetricsRegistry>, name: string): Promise<string> {
  return registry.getSingleMetricAsString(name);
}

describe('dark reader', () => {
  const cases: [string, () => Promise<unknown>, () => Promise<unknown>, 'value' | 'error', string][] = [
    ['equal results', value({ a: 1 }), value({ a: 1 }), 'value', 'match'],
    ['different results', value({ a: 1 }), value({ a: 2 }), 'value', 'mismatch'],
    ['the new path rejects', value(1), failure('new down'), 'value', 'candidate_error'],
    ['the new path throws synchronously', value(1), throwsSync('new bug'), 'value', 'candidate_error'],
    ['the old path rejects', failure('old down'), value(1), 'error', 'control_error'],
    ['both reject', failure('old down'), failure('new down'), 'error', 'control_error'],
    ['the new path is slower', value('x'), value('y', 30), 'value', 'mismatch'],
  ];

  it.each(cases)('runs each path exactly once when %s', async (_name, oldBehaviour, newBehaviour, expected, result) => {
    const registry = createMetricsRegistry({ defaultMetrics: false });
    const sent: unknown[] = [];
    const producer = { send: async (record: unknown) => void sent.push(record) } as unknown as KafkaProducer;
    for (const random of [() => 0.1, () => 0.9]) {
      const reader = createDarkReader<unknown>({ migration: 'm', producer, topic: 'shop.parity.mismatches', metrics: registry, random });
      const o = counted(oldBehaviour);
      const n = counted(newBehaviour);
      const read = reader.read(7, { old: o.fn as () => Promise<unknown>, new: n.fn as () => Promise<unknown> });
      if (expected === 'value') await expect(read).resolves.toEqual(await oldBehaviour());
      else await expect(read).rejects.toThrow('old down');
      await reader.flush();
      expect([o.calls(), n.calls()]).toEqual([1, 1]);
    }
    expect(await metricText(registry, 'parity_client_dark_reads_total')).toMatch(new RegExp(`result="${result}"} 2`));
    expect(sent).toHaveLength(result === 'mismatch' ? 2 : 0);
  });

  it('returns the old result without waiting for a slow new path', async () => {
    const reader = createDarkReader<string>({ migration: 'm' });
    let newDone = false;
    const slow = () =>
      new Promise<string>((resolve) =>
        setTimeout(() => {
          newDone = true;
          resolve('new');
        }, 200),
      );
    await expect(reader.read(1, { old: async () => 'old', new: slow })).resolves.toBe('old');
    expect(newDone).toBe(false);
    await reader.flush();
    expect(newDone).toBe(true);
  });

  it('counts a comparator that throws and a publish that fails, and still never reruns a path', async () => {
    const registry = createMetricsRegistry({ defaultMetrics: false });
    const failingProducer = {
      send: async () => {
        throw new Error('kafka down');
      },
    } as unknown as KafkaProducer;
    const o = counted(value(1));
    const n = counted(value(2));
    const throwing = createDarkReader<unknown>({
      migration: 'm',
      metrics: registry,
      compare: () => {
        throw new Error('bad comparator');
      },
    });
    await throwing.read(1, { old: o.fn, new: n.fn });
    await throwing.flush();
    const publishing = createDarkReader<unknown>({ migration: 'm', metrics: registry, producer: failingProducer, topic: 't' });
    await publishing.read(1, { old: o.fn, new: n.fn });
    await publishing.flush();
    expect([o.calls(), n.calls()]).toEqual([2, 2]);
    expect(await metricText(registry, 'parity_client_dark_reads_total')).toMatch(/result="compare_error"} 1/);
    expect(await metricText(registry, 'parity_client_mismatch_publish_errors_total')).toMatch(/ 1$/m);
  });

  it('follows the route: old and new run one path only', async () => {
    const o = counted(value('o'));
    const n = counted(value('n'));
    const reader = createDarkReader<unknown>({ migration: 'm', route: (key) => (key === 1 ? 'old' : 'new') });
    await expect(reader.read(1, { old: o.fn, new: n.fn })).resolves.toBe('o');
    await expect(reader.read(2, { old: o.fn, new: n.fn })).resolves.toBe('n');
    await reader.flush();
    expect([o.calls(), n.calls()]).toEqual([1, 1]);
  });
});
