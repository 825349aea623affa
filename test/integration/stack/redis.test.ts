import { afterAll, expect, test } from 'vitest';
import { Redis } from 'ioredis';
import { STACK, uniqueName } from '../../support/stack.js';

const redis = new Redis(STACK.PARITY_REDIS_URL);
afterAll(() => redis.disconnect());

test('a Lua script is loaded once and then run by its SHA', async () => {
  const script = `-- KEYS[1] counter; ARGV[1] increment; returns the new value
return redis.call('INCRBY', KEYS[1], ARGV[1])`;
  const sha = (await redis.script('LOAD', script)) as string;
  expect(sha).toMatch(/^[0-9a-f]{40}$/);
  const key = uniqueName('stack:counter');
  expect(await redis.evalsha(sha, 1, key, 5)).toBe(5);
  expect(await redis.evalsha(sha, 1, key, 7)).toBe(12);
  const [exists] = (await redis.script('EXISTS', sha)) as number[];
  expect(exists).toBe(1);
  await redis.del(key);
});
