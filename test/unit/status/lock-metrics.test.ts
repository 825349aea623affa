/** serve's reading of the migration lock from outside: which changes between two polls are losses. */
import { describe, expect, it } from 'vitest';
import { classifyLockChange, type LockReading } from '../../../services/status/lock-metrics.js';

const held = (owner: string, ttlMs: number, token: bigint): LockReading => ({ owner, ttlMs, token, holder: owner });
const free = (token: bigint): LockReading => ({ owner: null, ttlMs: 0, token, holder: null });

describe('classifyLockChange', () => {
  it('a newer token while the same lease is held is a lease taken', () => {
    expect(classifyLockChange(held('a', 10_000, 5n), held('a', 9_000, 6n), 1_000)).toBe('taken');
  });

  it('the same lease renewed with its own token is no loss', () => {
    expect(classifyLockChange(held('a', 10_000, 5n), held('a', 15_000, 5n), 5_000)).toBeNull();
  });

  it('a lease gone no earlier than it could have expired is an expiry', () => {
    expect(classifyLockChange(held('a', 4_000, 5n), free(5n), 5_000)).toBe('expired');
    expect(classifyLockChange(held('a', 4_000, 5n), held('b', 15_000, 6n), 4_000)).toBe('expired');
  });

  it('a lease gone before its expiry was released, and a new holder after that is no loss', () => {
    expect(classifyLockChange(held('a', 12_000, 5n), free(5n), 5_000)).toBeNull();
    expect(classifyLockChange(held('a', 12_000, 5n), held('b', 15_000, 6n), 5_000)).toBeNull();
  });

  it('tokens taken while nobody held the lease are no lease loss', () => {
    expect(classifyLockChange(free(5n), free(6n), 5_000)).toBeNull();
    expect(classifyLockChange(free(5n), held('b', 15_000, 6n), 5_000)).toBeNull();
  });
});
