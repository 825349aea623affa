/**
 * configHash is the spec's identity for verification runs (joined under the same hash, abandoned
 * otherwise): it follows the validated spec, not the file's text, and no credential feeds it.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { parseSpec } from '../../../services/core/spec.js';

const examplePath = fileURLToPath(new URL('../../../schemas/examples/orders-multicurrency.yaml', import.meta.url));
const example = readFileSync(examplePath, 'utf8');
const hashOf = (text: string, url: string) => parseSpec(text, examplePath, { PARITY_SOURCE_URL: url }).configHash;
const URL_A = 'postgres://parity:first@127.0.0.1:54329/shop';

describe('configHash', () => {
  test('a comment or blank lines keep it; a changed value changes it', () => {
    const base = hashOf(example, URL_A);
    expect(hashOf(`# a comment added later\n\n${example}\n# and another\n`, URL_A)).toBe(base);
    expect(hashOf(example.replace('orders-multicurrency', 'orders-multicurrency-2'), URL_A)).not.toBe(base);
  });

  test('a ${VAR} resolving to another database changes it; a rotated password does not', () => {
    const base = hashOf(example, URL_A);
    expect(hashOf(example, 'postgres://parity:first@127.0.0.1:54329/othershop')).not.toBe(base);
    expect(hashOf(example, 'postgres://parity:rotated@127.0.0.1:54329/shop')).toBe(base);
  });
});
