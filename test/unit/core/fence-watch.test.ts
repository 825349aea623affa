/** The fence watch of a long-running fenced writer: when it reports the lock lost, and how. */
import { describe, expect, it } from 'vitest';
import { ParityError } from '../../../services/core/errors.js';
import { FenceWatch, lockLostGauge } from '../../../services/core/fence-watch.js';
import { createMetricsRegistry } from '../../../services/core/metrics.js';

const gaugeValue = async (registry: ReturnType<typeof createMetricsRegistry>) =>
  (await registry.getSingleMetric('parity_lock_lost')!.get()).values[0]?.value;

describe('FenceWatch', () => {
  it('is ready while the token is the latest, and lock-lost once a newer one is read', async () => {
    const registry = createMetricsRegistry({ defaultMetrics: false });
    let latest = 7n;
    const watch = new FenceWatch({ scope: 'm', token: 7n, latest: async () => latest, gauge: lockLostGauge(registry) });
    await watch.check();
    expect(watch.readiness()).toBeUndefined();
    expect(await gaugeValue(registry)).toBe(0);
    latest = 9n;
    await watch.check();
    expect(watch.readiness()).toEqual({ ok: false, status: 'lock-lost', reason: 'lock lost: fencing token 7 superseded by 9' });
    expect(await gaugeValue(registry)).toBe(1);
    // Once lost, it stays lost with the first newer token seen (tokens never go back).
    latest = 10n;
    await watch.check();
    expect(watch.lost).toEqual({ token: 7n, latest: 9n });
  });

  it('a failed read is not a loss', async () => {
    const watch = new FenceWatch({
      scope: 'm',
      token: 7n,
      latest: async () => {
        throw new Error('connection refused');
      },
    });
    await watch.check();
    expect(watch.readiness()).toBeUndefined();
  });

  it('shares one read among concurrent checks (a burst of refusals cannot raise the rate)', async () => {
    let reads = 0;
    const watch = new FenceWatch({
      scope: 'm',
      token: 7n,
      latest: async () => {
        reads++;
        await new Promise((r) => setTimeout(r, 20));
        return 7n;
      },
    });
    await Promise.all([watch.check(), watch.check(), watch.check()]);
    expect(reads).toBe(1);
  });

  it('a write refused as stale marks the loss at once, from the token the refusal names', () => {
    const watch = new FenceWatch({ scope: 'm', token: 7n, latest: async () => 7n });
    watch.noteWriteError(new Error('connection reset'));
    expect(watch.lost).toBeUndefined();
    watch.noteWriteError(new ParityError('PARITY_STALE_FENCE', 'stale', { details: { scope: 'm', token: '7', latest: '8' } }));
    expect(watch.readiness()?.reason).toBe('lock lost: fencing token 7 superseded by 8');
  });
});
