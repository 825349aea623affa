import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { pgTlsProblems, resolveRedisSecurity, resolveRegistrySecurity } from '../../../services/core/connection-security.js';
import { ParityError } from '../../../services/core/errors.js';
import { registryFetch } from '../../../services/core/registry-http.js';
import { clearSecrets, redact } from '../../../services/core/secrets.js';
import { parseSpec, type SpecProblem } from '../../../services/core/spec.js';

const example = readFileSync(fileURLToPath(new URL('../../../schemas/examples/orders-multicurrency.yaml', import.meta.url)), 'utf8');
const dir = mkdtempSync(join(tmpdir(), 'parity-conn-sec-'));
const caFile = join(dir, 'ca.pem');
writeFileSync(caFile, '-----BEGIN CERTIFICATE-----\nnot checked here\n-----END CERTIFICATE-----\n');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const env = {
  PARITY_SOURCE_URL: `postgres://parity:pg-secret-1@127.0.0.1:54329/shop?sslmode=verify-full&sslrootcert=${caFile}`,
  REDIS_PASSWORD: 'redis-secret-123',
  REGISTRY_PASSWORD: 'registry-secret-123',
  REGISTRY_TOKEN: 'token-abcdef-123',
};

function withInfra(settings: Record<string, unknown>): string {
  const doc = parseDocument(example);
  for (const [k, v] of Object.entries(settings)) doc.setIn(k.split('.'), v);
  return doc.toString();
}

function problems(text: string, e: NodeJS.ProcessEnv = env): SpecProblem[] {
  try {
    parseSpec(text, 'spec.yaml', e);
  } catch (err) {
    expect((err as ParityError).exitCode).toBe(2);
    return (err as ParityError).details.problems as SpecProblem[];
  }
  throw new Error('spec was accepted');
}

describe('secured connections in the spec', () => {
  it('accepts rediss:// with a CA and an ACL user, HTTPS registry with basic auth, PostgreSQL verify-full', () => {
    const { spec } = parseSpec(
      withInfra({
        'infra.redis': { url: 'rediss://127.0.0.1:16380', username: 'parity', password: '${REDIS_PASSWORD}', tls: { ca: caFile } },
        'infra.registry': {
          url: 'https://127.0.0.1:18444/apis/ccompat/v7',
          tls: { ca: caFile },
          auth: { username: 'parity', password: '${REGISTRY_PASSWORD}' },
        },
      }),
      'spec.yaml',
      env,
    );
    expect(spec.infra.redis.tls?.verifyHostname).toBe(true);
    expect(spec.infra.registry.auth?.username).toBe('parity');
    // Every secret is registered: printed output never shows it.
    expect(redact(`redis ${env.REDIS_PASSWORD} registry ${env.REGISTRY_PASSWORD} pg pg-secret-1`)).not.toMatch(/secret/);
  });

  it('refuses literal Redis and registry passwords (in the field or in the URL) and says how to fix it', () => {
    const p = problems(
      withInfra({
        'infra.redis': { url: 'rediss://parity:hunter22@127.0.0.1:16380', password: 'hunter22' },
        'infra.registry': { url: 'https://127.0.0.1:18444/apis/ccompat/v7', auth: { username: 'parity', password: 'hunter22' } },
      }),
    );
    const paths = p.map((x) => x.path);
    expect(paths).toEqual(expect.arrayContaining(['infra.redis.password', 'infra.redis.url', 'infra.registry.auth.password']));
    expect(p.find((x) => x.path === 'infra.redis.password')?.hint).toMatch(/\$\{REDIS_PASSWORD\}/);
    expect(JSON.stringify(p)).not.toContain('hunter22');
  });

  it('refuses tls over a plaintext URL, half a client certificate and mixed registry auth', () => {
    const p = problems(
      withInfra({
        'infra.redis': { url: 'redis://127.0.0.1:16379', tls: { ca: caFile, cert: 'c.pem' } },
        'infra.registry': {
          url: 'http://127.0.0.1:18081/apis/ccompat/v7',
          tls: { ca: caFile },
          auth: { username: 'u', password: '${REGISTRY_PASSWORD}', tokenEnv: 'REGISTRY_TOKEN' },
        },
      }),
    );
    const byPath = Object.fromEntries(p.map((x) => [x.path, x.message]));
    expect(byPath['infra.redis.url']).toMatch(/rediss:\/\//);
    expect(byPath['infra.redis.tls.key']).toMatch(/both tls.cert and tls.key/);
    expect(byPath['infra.registry.url']).toMatch(/https:\/\//);
    expect(byPath['infra.registry.auth.tokenEnv']).toMatch(/not both/);
  });

  it('checks PostgreSQL sslmode and sslrootcert in every connection URL', () => {
    expect(pgTlsProblems(`postgres://u@h/db?sslmode=verify-full&sslrootcert=${caFile}`)).toEqual([]);
    expect(pgTlsProblems('postgres://u@h/db?sslmode=verify_full')[0]).toMatch(/not one of/);
    expect(pgTlsProblems(`postgres://u@h/db?sslrootcert=${caFile}`)[0]).toMatch(/needs sslmode=verify-full/);
    expect(pgTlsProblems(`postgres://u@h/db?sslmode=verify-full&sslrootcert=${join(dir, 'missing.pem')}`)[0]).toMatch(
      /cannot be read \(ENOENT\)/,
    );
    const p = problems(withInfra({}), { ...env, PARITY_SOURCE_URL: 'postgres://u@127.0.0.1/db?sslmode=verify-everything' });
    expect(p.some((x) => x.path === 'source.database' && /sslmode=verify-everything/.test(x.message))).toBe(true);
  });
});

describe('resolving the settings for the clients', () => {
  it('Redis: TLS with the CA for rediss://, none for redis://; the password is registered', () => {
    clearSecrets();
    const r = resolveRedisSecurity({
      url: 'rediss://h:1',
      username: 'parity',
      password: 'redis-pw-9876',
      tls: { ca: caFile, verifyHostname: true },
    });
    expect(r.tls?.ca?.toString()).toContain('BEGIN CERTIFICATE');
    expect(r.username).toBe('parity');
    expect(redact('x redis-pw-9876 y')).toBe('x [redacted] y');
    expect(resolveRedisSecurity({ url: 'redis://h:1' }).tls).toBeUndefined();
  });

  it('registry: a bearer token from its variable, a clear exit-2 error when the variable is unset or the CA file is missing', () => {
    const s = resolveRegistrySecurity({ url: 'https://h/apis', auth: { tokenEnv: 'REGISTRY_TOKEN' } }, { REGISTRY_TOKEN: 'tok-123456' });
    expect(s.authorization).toBe('Bearer tok-123456');
    expect(redact('Bearer tok-123456')).not.toContain('tok-123456');
    const unset = (() => {
      try {
        resolveRegistrySecurity({ url: 'https://h/apis', auth: { tokenEnv: 'REGISTRY_TOKEN' } }, {});
      } catch (err) {
        return err as ParityError;
      }
    })();
    expect(unset?.exitCode).toBe(2);
    expect(unset?.message).toMatch(/REGISTRY_TOKEN \(infra.registry.auth.tokenEnv\) is not set/);
    expect(() => resolveRegistrySecurity({ url: 'https://h/apis', tls: { ca: join(dir, 'nope.pem'), verifyHostname: true } })).toThrow(
      /infra.registry.tls.ca/,
    );
  });

  it('registryFetch adds the Authorization header of basic auth', async () => {
    const seen: string[] = [];
    const original = globalThis.fetch;
    globalThis.fetch = (async (_u: string, init?: RequestInit) => {
      seen.push(new Headers(init?.headers).get('authorization') ?? '');
      return new Response('{}');
    }) as typeof fetch;
    try {
      await registryFetch({ url: 'http://h/apis', auth: { username: 'u', password: 'p-secret' } })('http://h/apis/subjects', {
        headers: { accept: 'application/json' },
      });
    } finally {
      globalThis.fetch = original;
    }
    expect(seen).toEqual([`Basic ${Buffer.from('u:p-secret').toString('base64')}`]);
  });
});
