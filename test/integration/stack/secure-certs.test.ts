/**
 * The secured stack's certificates (secure-kafka.ts generateCertificates, issue 16): made once per
 * state dir and kept, so a restart of the broker or of the whole stack does not change the CA its
 * clients hold; remade only when the set is incomplete or no longer valid. Real openssl.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateCertificates } from '../../../services/stack/secure-kafka.js';

const dir = mkdtempSync(join(tmpdir(), 'parity-secure-certs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const read = (file: string) => readFileSync(file, 'utf8');

describe('generateCertificates', () => {
  it('keeps a complete, valid set: a second call (a restart) returns the same CA and certificates', () => {
    const first = generateCertificates(dir);
    const ca = read(first.ca);
    const broker = read(first.brokerKeystore);
    const second = generateCertificates(dir);
    expect(second).toEqual(first);
    expect(read(second.ca)).toBe(ca);
    expect(read(second.brokerKeystore)).toBe(broker);
  });

  it('makes a new set when a file is missing, when the certificate expires within a week, or when asked', () => {
    const files = generateCertificates(dir);
    const ca = read(files.ca);
    unlinkSync(join(dir, 'broker.pem'));
    const remade = generateCertificates(dir);
    expect(read(remade.ca)).not.toBe(ca);

    // A CA valid for one day only: too close to expiry to keep.
    const shortLived = spawnSync('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      join(dir, 'ca.key'),
      '-out',
      join(dir, 'ca.pem'),
      '-days',
      '1',
      '-subj',
      '/CN=short-lived',
    ]);
    expect(shortLived.status).toBe(0);
    const expiring = read(join(dir, 'ca.pem'));
    const renewed = generateCertificates(dir);
    expect(read(renewed.ca)).not.toBe(expiring);
    const check = spawnSync('openssl', ['x509', '-in', renewed.ca, '-noout', '-checkend', String(30 * 24 * 3600)]);
    expect(check.status).toBe(0);

    const kept = read(renewed.ca);
    expect(read(generateCertificates(dir, { fresh: true }).ca)).not.toBe(kept);
  });

  it('a broker certificate not signed by the CA in the folder is not kept', () => {
    const files = generateCertificates(dir);
    const other = read(files.otherCa);
    const ca = read(files.ca);
    // The other CA takes the CA's place: the broker certificate no longer verifies against it.
    writeFileSync(files.ca, other);
    const remade = generateCertificates(dir);
    expect(read(remade.ca)).not.toBe(other);
    expect(read(remade.ca)).not.toBe(ca);
  });
});
