/**
 * Test-owned Redis key prefixes, deleted after the file's tests (SCAN on the unique prefix, test
 * code only), so the shared Redis does not collect leftovers.
 */
import type { Redis } from 'ioredis';
import { uniqueName } from '../../support/stack.js';

export function prefixTracker(base: string): { next(): string; track(pattern: string): void; cleanup(redis: Redis): Promise<void> } {
  const patterns: string[] = [];
  return {
    next() {
      const prefix = uniqueName(base);
      patterns.push(`${prefix}:*`);
      return prefix;
    },
    track(pattern) {
      patterns.push(pattern);
    },
    async cleanup(redis) {
      for (const match of patterns) {
        let cursor = '0';
        do {
          const [next, keys] = await redis.scan(cursor, 'MATCH', match, 'COUNT', 500);
          cursor = next;
          if (keys.length > 0) await redis.del(...keys);
        } while (cursor !== '0');
      }
    },
  };
}
