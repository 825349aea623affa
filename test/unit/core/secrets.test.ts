import { afterEach, describe, expect, it } from 'vitest';
import { clearSecrets, displayUrl, redact, redactUrl, registerCredentials, REDACTED } from '../../../services/core/secrets.js';
import { parseSpec } from '../../../services/core/spec.js';
import { readFileSync } from 'node:fs';

afterEach(() => clearSecrets());

describe('redaction corner cases (17.5)', () => {
  it('redacts a password in a URL query string (password, sslpassword, sslkey)', () => {
    const out = redactUrl('postgres://app@db:5432/shop?sslmode=verify-full&password=hunter22&sslpassword=keypass1&sslkey=/keys/client.key');
    expect(out).not.toMatch(/hunter22|keypass1|client\.key/);
    expect(out).toContain('sslmode=verify-full');
    expect(out).toContain(`password=${REDACTED}`);
  });

  it('redacts a password containing "@" whole', () => {
    const out = redactUrl('connecting to postgres://app:p@ss@word@db.internal:5432/shop failed');
    expect(out).toBe(`connecting to postgres://app:${REDACTED}@db.internal:5432/shop failed`);
  });

  it('redacts libpq keyword/value passwords', () => {
    expect(redactUrl("host=db user=app password='s3 cret' dbname=shop")).toBe(`host=db user=app password=${REDACTED} dbname=shop`);
  });

  it('treats every value in a credential position as secret, whatever its ${VAR} is called', () => {
    const example = readFileSync(new URL('../../../schemas/examples/orders-multicurrency.yaml', import.meta.url), 'utf8');
    // DB_PASS does not look like a secret by its name; its position (URL userinfo) makes it one.
    parseSpec(example, 'spec.yaml', {
      PARITY_SOURCE_URL: 'postgres://app:${DB_PASS}@db:5432/shop'.replace('${DB_PASS}', 'pl41n-v4lue'),
      PARITY_REDIS_URL: 'redis://default:r3dis-pw@cache:6379',
    });
    expect(redact('error: password pl41n-v4lue rejected')).not.toContain('pl41n-v4lue');
    expect(redact('auth r3dis-pw failed')).not.toContain('r3dis-pw');
  });

  it('registers interpolated ${DB_PASS} in a URL by position', () => {
    const example = readFileSync(new URL('../../../schemas/examples/orders-multicurrency.yaml', import.meta.url), 'utf8');
    parseSpec(example.replace('${PARITY_SOURCE_URL}', 'postgres://app:${DB_PASS}@db:5432/shop'), 'spec.yaml', {
      DB_PASS: 'only-by-position',
    });
    expect(redact('the driver said: only-by-position')).toBe(`the driver said: ${REDACTED}`);
  });

  it('registers SASL settings and TLS private keys, not their mechanism or user name', () => {
    registerCredentials({
      infra: {
        kafka: {
          sasl: { mechanism: 'scram-sha-512', username: 'svc-parity', password: 'kafka-pw-1' },
          tls: { ca: '/etc/ca.pem', key: '-----BEGIN KEY-----abc', passphrase: 'keypass-2' },
        },
      },
    });
    expect(redact('kafka-pw-1 -----BEGIN KEY-----abc keypass-2')).toBe(`${REDACTED} ${REDACTED} ${REDACTED}`);
    expect(redact('scram-sha-512 svc-parity /etc/ca.pem')).toBe('scram-sha-512 svc-parity /etc/ca.pem');
  });

  it('shows probe URLs without userinfo or query', () => {
    expect(displayUrl('https://ops:tok3n@health.internal:8443/ready?api_key=abc&region=eu')).toBe(
      `https://${REDACTED}@health.internal:8443/ready?${REDACTED}`,
    );
    expect(displayUrl('http://health.internal/ready')).toBe('http://health.internal/ready');
  });
});
