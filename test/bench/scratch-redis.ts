import { Redis } from 'ioredis';
import { STACK } from '../support/stack.js';
const r = new Redis(STACK.PARITY_REDIS_URL);
r.defineCommand('trivial', { numberOfKeys: 1, lua: 'return 1' });
r.defineCommand('hsetx', { numberOfKeys: 1, lua: "redis.call('HSET', KEYS[1], unpack(ARGV)) redis.call('PEXPIRE', KEYS[1], 60000) return 1" });
async function run(label: string, fn: (p: any, i: number) => void, n = 40000) {
  await r.config('RESETSTAT');
  const t = performance.now();
  for (let i = 0; i < n; i += 2000) { const p = r.pipeline(); for (let j = i; j < i + 2000; j++) fn(p, j); await p.exec(); }
  const ms = performance.now() - t;
  const info = (await r.info('commandstats')).split('\n').filter((l) => /calls=/.test(l) && !/config|info/.test(l)).map((l) => l.replace(/,rejected.*/, '').trim());
  console.log(label, 'client ops/s', Math.round(n / (ms / 1000)), info.join(' | '));
}
const args = ['_pos', '0000000000000001:0000000000', '_kind', 'v', '_key', '{"id":1}', '_cts', '1', '_wts', '1', 'c:id', '1', 'c:total_amount_minor', '"1001"', 'c:currency', '"USD"', 'c:price', '"1.01"', 'c:paid', 'false', 'c:updated_at', '"2024-05-01 12:01:00.21264+00"', 'c:tags', '["a","v1",null]'];
await run('trivial evalsha', (p, i) => p.trivial(`scr:t:${i}`));
await run('hset+pexpire script', (p, i) => p.hsetx(`scr:h:${i % 20000}`, ...args));
await run('plain hset', (p, i) => p.hset(`scr:p:${i % 20000}`, ...args));
for (const prefix of ['scr:h:', 'scr:p:']) for (let i = 0; i < 20000; i += 1000) await r.del(...Array.from({ length: 1000 }, (_, j) => `${prefix}${i + j}`));
r.disconnect();
