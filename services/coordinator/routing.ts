/**
 * Consistent percentage routing: a key's bucket comes from MurmurHash3 (x86, 32-bit) of
 * "<salt>:<key>", so a key stays on the same path while the percentage only grows (a key in the 1%
 * is also in the 10%), and different migrations (salts) ramp different keys. The same approach
 * as Unleash's gradual rollout.
 */
import type { Flags, ReadPath } from './flag-model.js';

/** A routing key: the row's primary key (one value, or the values of a composite key in order). */
export type RoutingKey = string | number | bigint | readonly (string | number | bigint)[];

const encoder = new TextEncoder();

/** MurmurHash3 x86 32-bit of the UTF-8 bytes of `text`. */
export function murmur3(text: string, seed = 0): number {
  const data = encoder.encode(text);
  const c1 = 0xcc9e2d51;
  const c2 = 0x1b873593;
  let h = seed >>> 0;
  const blocks = data.length >> 2;
  for (let i = 0; i < blocks; i++) {
    const o = i * 4;
    let k = (data[o] as number) | ((data[o + 1] as number) << 8) | ((data[o + 2] as number) << 16) | ((data[o + 3] as number) << 24);
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const tail = blocks * 4;
  const rest = data.length & 3;
  let k = 0;
  if (rest >= 3) k ^= (data[tail + 2] as number) << 16;
  if (rest >= 2) k ^= (data[tail + 1] as number) << 8;
  if (rest >= 1) {
    k ^= data[tail] as number;
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
  }
  h ^= data.length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Buckets per 100%: percentages are honoured to 0.01. */
export const BUCKETS = 10_000;

export function keyText(key: RoutingKey): string {
  return Array.isArray(key) ? key.map(String).join('\u001f') : String(key);
}

/** The key's bucket in [0, 10000). */
export function bucketOf(key: RoutingKey, salt: string): number {
  return murmur3(`${salt}:${keyText(key)}`) % BUCKETS;
}

/** Whether the key falls in the first `percent` percent of buckets. */
export function inRamp(key: RoutingKey, percent: number, salt: string): boolean {
  if (percent <= 0) return false;
  if (percent >= 100) return true;
  return bucketOf(key, salt) < Math.round(percent * 100);
}

/**
 * The read path for a key: `old` unless the key is inside the ramp, in which case the flag's path
 * (`dark`: read old, compare new; `new`: read new).
 */
export function routeRead(flags: Pick<Flags, 'read' | 'readPercent'>, key: RoutingKey, salt: string): ReadPath {
  if (flags.read === 'old') return 'old';
  return inRamp(key, flags.readPercent, salt) ? flags.read : 'old';
}
