import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Reader, readRecordsBatch } from '@platformatic/kafka';
import { describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { ScramSession, saslSession } from '../../../connectors/kafka-sink/sasl.js';
import { COMPRESSION_CODES, type Compression, Writer, readRecordBatch, writeRecordBatch } from '../../../connectors/kafka-sink/wire.js';
import { ParityError } from '../../../services/core/errors.js';
import { resolveKafkaSecurity } from '../../../services/core/kafka-security.js';
import { clearSecrets, redact } from '../../../services/core/secrets.js';
import { parseSpec, type SpecProblem } from '../../../services/core/spec.js';

describe('SCRAM client (RFC 5802 / RFC 7677)', () => {
  it('produces the client proof of RFC 7677 section 3 and accepts its server signature', () => {
    const s = new ScramSession('SCRAM-SHA-256', 'sha256', 'user', 'pencil', 'rOprNGfwEbeRWgbNEkqO');
    expect(s.start().toString()).toBe('n,,n=user,r=rOprNGfwEbeRWgbNEkqO');
    const final = s.respond(Buffer.from('r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096'));
    expect(final?.toString()).toBe(
      'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
    );
    expect(s.verified).toBe(false);
    expect(s.respond(Buffer.from('v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4='))).toBeNull();
    expect(s.verified).toBe(true);
  });

  it('refuses a server signature made without the password, and a nonce that does not extend ours', () => {
    const s = new ScramSession('SCRAM-SHA-256', 'sha256', 'user', 'pencil', 'rOprNGfwEbeRWgbNEkqO');
    s.start();
    s.respond(Buffer.from('r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096'));
    expect(() => s.respond(Buffer.from(`v=${Buffer.alloc(32).toString('base64')}`))).toThrow(/server signature is wrong/);
    const t = new ScramSession('SCRAM-SHA-512', 'sha512', 'user', 'pencil', 'abc');
    t.start();
    expect(() => t.respond(Buffer.from('r=xyz123,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096'))).toThrow(/nonce/);
  });

  it('escapes "=" and "," in the user name; SHA-512 proofs are 64 bytes', () => {
    const s = saslSession({ mechanism: 'SCRAM-SHA-512', username: 'a=b,c', password: 'pw' }, 'nonce');
    expect(s.start().toString()).toBe('n,,n=a=3Db=2Cc,r=nonce');
    const final = s.respond(Buffer.from('r=nonceSERVER,s=c2FsdA==,i=4096'))!.toString();
    expect(Buffer.from(/p=(.*)$/.exec(final)![1]!, 'base64')).toHaveLength(64);
  });

  it('PLAIN and OAUTHBEARER initial responses', () => {
    expect(saslSession({ mechanism: 'PLAIN', username: 'u', password: 'p' }).start().toString()).toBe('\u0000u\u0000p');
    expect(saslSession({ mechanism: 'OAUTHBEARER', token: 'tok' }).start().toString()).toBe('n,,\u0001auth=Bearer tok\u0001\u0001');
    // RFC 7628 3.2.2: an error challenge is answered with ^A; a broker that then does not fail is still a refusal.
    const o = saslSession({ mechanism: 'OAUTHBEARER', token: 'tok' });
    o.start();
    expect(o.respond(Buffer.alloc(0))).toBeNull();
    const refused = saslSession({ mechanism: 'OAUTHBEARER', token: 'tok' });
    refused.start();
    expect(refused.respond(Buffer.from('{"status":"invalid_token"}'))?.toString()).toBe('\u0001');
    expect(() => refused.respond(Buffer.alloc(0))).toThrow(/refused the token: \{"status":"invalid_token"\}/);
  });
});

describe('RecordBatch compression', () => {
  const records = Array.from({ length: 50 }, (_, i) => ({
    key: Buffer.from(`key-${i}`),
    value: Buffer.from(JSON.stringify({ id: i, note: 'x'.repeat(200) })),
    headers: [[Buffer.from('parity.ordinal'), String(i)]] as [Buffer, string][],
  }));

  for (const codec of ['none', 'gzip', 'zstd'] as Compression[]) {
    it(`${codec}: sets the codec bits and decodes back (ours and @platformatic/kafka's reader)`, () => {
      const w = new Writer(64);
      writeRecordBatch(
        w,
        { topic: 't', partition: 0, baseSequence: 7, records },
        1_763_700_000_000,
        { producerId: 99n, producerEpoch: 1 },
        codec,
      );
      const batch = w.toBuffer();
      const ours = readRecordBatch(batch);
      expect(ours.attributes & 0x07).toBe(COMPRESSION_CODES[codec]);
      expect(ours.compression).toBe(codec);
      expect([ours.producerId, ours.baseSequence]).toEqual([99n, 7]);
      expect(ours.records.map((r) => r.value!.toString())).toEqual(records.map((r) => r.value.toString()));
      expect(ours.records[49]!.headers).toEqual([['parity.ordinal', Buffer.from('49')]]);
      const theirs = readRecordsBatch(Reader.from(batch));
      expect(theirs.attributes & 0x07).toBe(COMPRESSION_CODES[codec]);
      expect(theirs.records.map((r) => r.key?.toString())).toEqual(records.map((r) => r.key.toString()));
      if (codec !== 'none') {
        const plain = new Writer(64);
        writeRecordBatch(plain, { topic: 't', partition: 0, baseSequence: 7, records }, 1_763_700_000_000, {
          producerId: 99n,
          producerEpoch: 1,
        });
        expect(batch.length).toBeLessThan(plain.pos / 4);
      }
    });
  }

  it('a corrupted compressed batch fails its CRC', () => {
    const w = new Writer();
    writeRecordBatch(w, { topic: 't', partition: 0, baseSequence: 0, records }, 0, { producerId: 1n, producerEpoch: 0 }, 'zstd');
    const batch = w.toBuffer();
    batch[batch.length - 3]! ^= 0xff;
    expect(() => readRecordBatch(batch)).toThrow(/CRC/);
  });
});

const example = readFileSync(fileURLToPath(new URL('../../../schemas/examples/orders-multicurrency.yaml', import.meta.url)), 'utf8');
const env = { PARITY_SOURCE_URL: 'postgres://parity@127.0.0.1:54329/shop', KAFKA_PASSWORD: 'kafka-secret-123', KAFKA_USER: 'parity' };

function withSecurity(security: unknown, extra: Record<string, unknown> = {}): string {
  const doc = parseDocument(example);
  doc.setIn(['infra', 'kafka', 'security'], security);
  for (const [k, v] of Object.entries(extra)) doc.setIn(k.split('.'), v);
  return doc.toString();
}

function problems(text: string): SpecProblem[] {
  try {
    parseSpec(text, 'spec.yaml', env);
  } catch (err) {
    expect((err as ParityError).exitCode).toBe(2);
    return (err as ParityError).details.problems as SpecProblem[];
  }
  throw new Error('spec was accepted');
}

describe('kafka.security in the spec', () => {
  it('accepts SASL_SSL + SCRAM with ${VAR} secrets and defaults verifyHostname to true, compression to none', () => {
    const { spec } = parseSpec(
      withSecurity({
        protocol: 'SASL_SSL',
        tls: { ca: 'ca.pem' },
        sasl: { mechanism: 'SCRAM-SHA-512', username: '${KAFKA_USER}', password: '${KAFKA_PASSWORD}' },
      }),
      'spec.yaml',
      env,
    );
    expect(spec.infra.kafka.security?.tls?.verifyHostname).toBe(true);
    expect(spec.infra.kafka.security?.sasl?.password).toBe('kafka-secret-123');
    expect(spec.cdc.compression).toBe('none');
    expect(redact('login with kafka-secret-123 failed')).toBe('login with [redacted] failed');
  });

  it('refuses a literal password, naming the field and the fix', () => {
    const p = problems(withSecurity({ protocol: 'SASL_SSL', sasl: { mechanism: 'PLAIN', username: 'key', password: 'hunter2-literal' } }));
    const found = p.find((x) => x.path === 'infra.kafka.security.sasl.password');
    expect(found?.message).toMatch(/only accepted as \$\{VAR\}/);
    expect(found?.hint).toMatch(/password: \$\{KAFKA_PASSWORD\}/);
    expect(JSON.stringify(p)).not.toContain('hunter2-literal');
  });

  it('refuses inconsistent sections with the field to fix', () => {
    expect(problems(withSecurity({ protocol: 'SASL_SSL' })).map((x) => x.path)).toContain('infra.kafka.security.sasl');
    expect(problems(withSecurity({ protocol: 'PLAINTEXT', tls: { ca: 'ca.pem' } })).map((x) => x.path)).toContain(
      'infra.kafka.security.protocol',
    );
    expect(problems(withSecurity({ protocol: 'SSL', tls: { cert: 'c.pem' } })).map((x) => x.path)).toContain(
      'infra.kafka.security.tls.key',
    );
    expect(problems(withSecurity({ protocol: 'SASL_SSL', sasl: { mechanism: 'OAUTHBEARER' } })).map((x) => x.path)).toContain(
      'infra.kafka.security.sasl.tokenEnv',
    );
    expect(
      problems(
        withSecurity({ protocol: 'SASL_SSL', sasl: { mechanism: 'SCRAM-SHA-1', username: 'u', password: '${KAFKA_PASSWORD}' } }),
      ).map((x) => x.path),
    ).toContain('infra.kafka.security.sasl.mechanism');
    expect(problems(withSecurity(undefined, { 'cdc.compression': 'lz4' })).map((x) => x.path)).toContain('cdc.compression');
  });

  it('resolves files and the OAUTHBEARER token; a missing file or variable is bad input naming the setting', () => {
    clearSecrets();
    expect(() => resolveKafkaSecurity({ protocol: 'SSL', tls: { ca: 'no/such/ca.pem', verifyHostname: true } })).toThrow(
      /kafka\.security\.tls\.ca/,
    );
    try {
      resolveKafkaSecurity({ protocol: 'SASL_SSL', sasl: { mechanism: 'OAUTHBEARER', tokenEnv: 'PARITY_TEST_TOKEN' } }, {});
      throw new Error('accepted');
    } catch (err) {
      expect((err as ParityError).code).toBe('PARITY_BAD_INPUT');
      expect((err as Error).message).toMatch(/PARITY_TEST_TOKEN \(kafka\.security\.sasl\.tokenEnv\) is not set/);
    }
    const r = resolveKafkaSecurity({ protocol: 'SASL_SSL', sasl: { mechanism: 'OAUTHBEARER', tokenEnv: 'T' } }, { T: 'eyJ-secret-token' });
    expect(r.sasl?.token).toBe('eyJ-secret-token');
    expect(r.tls?.rejectUnauthorized).toBe(true);
    expect(redact('token eyJ-secret-token')).toBe('token [redacted]');
  });
});
