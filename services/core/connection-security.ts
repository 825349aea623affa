/**
 * TLS and credentials for the connections other than Kafka (kafka-security.ts has Kafka's): Redis
 * (`infra.redis`: `rediss://`, a CA, an ACL user and password), the schema registry (`infra.registry`:
 * HTTPS with a CA, basic auth or a bearer token) and PostgreSQL (libpq's `sslmode`/`sslrootcert` in
 * the connection URL, which node-postgres and pg-logical-replication read themselves).
 *
 * As for Kafka, the spec names files and environment variables, never secret values: passwords only
 * as `${VAR}`, a bearer token read from the variable the spec names, keys read from files. The
 * resolvers register every secret they read so that no output shows it.
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import { z } from 'zod';
import { ParityError } from './errors.js';
import { registerSecret } from './secrets.js';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** A value that is exactly one `${VAR}` reference (no default: a default would be a literal secret). */
const VARIABLE_ONLY = /^\$\{[A-Za-z_][A-Za-z0-9_]*\}$/;

/** A `tls` section: the CA to trust, an optional client certificate, the hostname check. */
const tlsSchema = z.strictObject({
  /** PEM file of the CA(s) that signed the server's certificate; default: Node's public CAs. */
  ca: z.string().min(1).optional(),
  /** PEM client certificate (mutual TLS); with `key`. */
  cert: z.string().min(1).optional(),
  /** PEM client private key (mutual TLS); with `cert`. */
  key: z.string().min(1).optional(),
  /** Check that the server's certificate names the host connected to (default true). */
  verifyHostname: z.boolean().default(true),
  /** TLS server name (SNI) and the name checked in the certificate, when it differs from the host. */
  servername: z.string().min(1).optional(),
});
export type TlsSpec = z.output<typeof tlsSchema>;

function checkTls(tls: TlsSpec | undefined, ctx: z.RefinementCtx): void {
  if (tls && (tls.cert === undefined) !== (tls.key === undefined)) {
    ctx.addIssue({
      code: 'custom',
      path: ['tls', tls.cert === undefined ? 'cert' : 'key'],
      message: 'client certificates need both tls.cert and tls.key',
    });
  }
}

/** `infra.redis` in the spec. */
export const redisSpecSchema = z
  .strictObject({
    url: z.string().regex(/^rediss?:\/\//, 'write redis://host:port (or rediss://host:port for TLS)'),
    /** Redis ACL user (Redis 6+); default: the URL's user, else `default`. */
    username: z.string().min(1).optional(),
    /** Only as `${VAR}`. */
    password: z.string().min(1).optional(),
    /** TLS settings; only with a rediss:// URL. */
    tls: tlsSchema.optional(),
  })
  .superRefine((r, ctx) => {
    if (r.tls && !r.url.startsWith('rediss://'))
      ctx.addIssue({ code: 'custom', path: ['url'], message: 'a tls section needs a rediss:// URL (TLS), not redis://' });
    checkTls(r.tls, ctx);
  });
export type RedisSpec = z.output<typeof redisSpecSchema>;

/** `infra.registry` in the spec. */
export const registrySpecSchema = z
  .strictObject({
    url: z.string().url(),
    /** TLS settings; only with an https:// URL. */
    tls: tlsSchema.optional(),
    /** Basic auth (username, password: ${VAR}) or a bearer token read from the variable `tokenEnv` names. */
    auth: z
      .strictObject({
        username: z.string().min(1).optional(),
        /** Only as `${VAR}`. */
        password: z.string().min(1).optional(),
        tokenEnv: z.string().regex(ENV_NAME, 'the name of an environment variable, e.g. REGISTRY_TOKEN').optional(),
      })
      .optional(),
  })
  .superRefine((r, ctx) => {
    if (r.tls && !r.url.startsWith('https://'))
      ctx.addIssue({ code: 'custom', path: ['url'], message: 'a tls section needs an https:// URL, not http://' });
    checkTls(r.tls, ctx);
    const a = r.auth;
    if (!a) return;
    const basic = a.username !== undefined || a.password !== undefined;
    if (basic && a.tokenEnv)
      ctx.addIssue({
        code: 'custom',
        path: ['auth', 'tokenEnv'],
        message: 'choose basic auth (username, password) or a bearer token (tokenEnv), not both',
      });
    else if (basic && (!a.username || !a.password))
      ctx.addIssue({
        code: 'custom',
        path: ['auth', a.username ? 'password' : 'username'],
        message: 'basic auth needs both username and password (password as ${VAR})',
      });
    else if (!basic && !a.tokenEnv)
      ctx.addIssue({
        code: 'custom',
        path: ['auth'],
        message: 'write username and password (${VAR}), or tokenEnv: the variable holding a bearer token',
      });
  });
export type RegistrySpec = z.output<typeof registrySpecSchema>;

/** libpq's sslmode values (node-postgres reads them from the connection URL). */
export const PG_SSLMODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;

/**
 * Problems of a PostgreSQL connection URL's TLS settings: an sslmode libpq does not know, an
 * sslrootcert without a verifying sslmode, an sslrootcert file that cannot be read (unless `offline`).
 */
export function pgTlsProblems(url: string, offline = false): string[] {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return [];
  }
  const out: string[] = [];
  const mode = u.searchParams.get('sslmode');
  if (mode !== null && !(PG_SSLMODES as readonly string[]).includes(mode))
    out.push(`sslmode=${mode} is not one of ${PG_SSLMODES.join(', ')} (verify-full checks the CA and the host name)`);
  const ca = u.searchParams.get('sslrootcert');
  if (ca !== null) {
    if (mode === null || ['disable', 'allow', 'prefer'].includes(mode))
      out.push('sslrootcert needs sslmode=verify-full (or verify-ca) to be checked');
    // Offline validation stands `unresolved-NAME` in for a ${VAR}: no file to look at.
    if (!offline && !ca.includes('${') && !ca.includes('unresolved-')) {
      try {
        readFileSync(ca);
      } catch (err) {
        out.push(
          `sslrootcert ${ca} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): point it at the CA's PEM file`,
        );
      }
    }
  }
  return out;
}

/** A URL's userinfo password, if it is written literally (not a `${VAR}`). */
function literalUrlPassword(url: unknown): boolean {
  if (typeof url !== 'string' || VARIABLE_ONLY.test(url.trim())) return false;
  const m = /^[a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:(.*)@[^@]*$/i.exec(url.trim());
  if (!m || m[1] === undefined || m[1] === '') return false;
  return !VARIABLE_ONLY.test(m[1]);
}

function literalField(value: unknown): boolean {
  return value !== undefined && value !== null && !(typeof value === 'string' && VARIABLE_ONLY.test(value.trim()));
}

/**
 * Problems of the raw (not yet interpolated) spec the schema cannot see: a Redis or registry
 * password written literally instead of as a `${VAR}` reference. Returns path/message/hint.
 */
export function literalConnectionSecrets(raw: unknown): { path: string; message: string; hint: string }[] {
  const infra = (
    raw as { infra?: { redis?: Record<string, unknown>; registry?: { url?: unknown; auth?: Record<string, unknown> } } } | null
  )?.infra;
  const out: { path: string; message: string; hint: string }[] = [];
  const refuse = (path: string, what: string, variable: string) =>
    out.push({
      path,
      message: `the ${what} is written in the spec; secrets are only accepted as \${VAR} references`,
      hint: `write \${${variable}} there and export ${variable}=... in the environment (or a Kubernetes Secret / .env)`,
    });
  if (literalField(infra?.redis?.password)) refuse('infra.redis.password', 'Redis password', 'REDIS_PASSWORD');
  if (literalUrlPassword(infra?.redis?.url)) refuse('infra.redis.url', 'Redis password (in the URL)', 'REDIS_PASSWORD');
  if (literalField(infra?.registry?.auth?.password)) refuse('infra.registry.auth.password', 'registry password', 'REGISTRY_PASSWORD');
  if (literalUrlPassword(infra?.registry?.url)) refuse('infra.registry.url', 'registry password (in the URL)', 'REGISTRY_PASSWORD');
  return out;
}

function readPem(path: string, setting: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ParityError(
      'PARITY_BAD_INPUT',
      `cannot read ${setting} (${path}): ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      {
        hint: `point ${setting} at a readable PEM file (paths are relative to the working directory)`,
      },
    );
  }
}

/** node:tls options of a `tls` section; `setting` names it in errors (e.g. `infra.redis.tls`). */
export function resolveTls(t: TlsSpec | undefined, setting: string): TlsOptions {
  const tls: TlsOptions = { rejectUnauthorized: true };
  if (!t) return tls;
  if (t.ca) tls.ca = readPem(t.ca, `${setting}.ca`);
  if (t.cert) tls.cert = readPem(t.cert, `${setting}.cert`);
  if (t.key) {
    const key = readPem(t.key, `${setting}.key`);
    registerSecret(key.toString('utf8').trim());
    tls.key = key;
  }
  if (t.servername) tls.servername = t.servername;
  // The chain is still verified against the CA; only the name check is skipped.
  if (!t.verifyHostname) tls.checkServerIdentity = () => undefined;
  return tls;
}

/** ioredis connection settings of `infra.redis` (the URL itself is passed separately). */
export interface RedisSecurity {
  tls?: TlsOptions;
  username?: string;
  password?: string;
}

export function resolveRedisSecurity(r: RedisSpec | { url: string }): RedisSecurity {
  const spec = r as RedisSpec;
  const out: RedisSecurity = {};
  if (spec.url.startsWith('rediss://')) out.tls = resolveTls(spec.tls, 'infra.redis.tls');
  if (spec.username) out.username = spec.username;
  if (spec.password) {
    registerSecret(spec.password);
    out.password = spec.password;
  }
  return out;
}

/** The registry's HTTP settings: TLS options for https:// and the Authorization header. */
export interface RegistrySecurity {
  tls?: TlsOptions;
  /** `Basic ...` or `Bearer ...`; registered as a secret. */
  authorization?: string;
  /** What authenticates, for messages: 'basic auth (user x)', 'bearer token (REGISTRY_TOKEN)', 'none'. */
  describe: string;
}

/**
 * Reads the CA and key files and the bearer token `infra.registry` names. Throws PARITY_BAD_INPUT
 * (exit 2) when a file cannot be read or the token's variable is unset.
 */
export function resolveRegistrySecurity(r: RegistrySpec | { url: string }, env: NodeJS.ProcessEnv = process.env): RegistrySecurity {
  const spec = r as RegistrySpec;
  const out: RegistrySecurity = { describe: 'no authentication' };
  if (spec.url.startsWith('https://')) out.tls = resolveTls(spec.tls, 'infra.registry.tls');
  const a = spec.auth;
  if (a?.username && a.password) {
    registerSecret(a.password);
    const basic = Buffer.from(`${a.username}:${a.password}`).toString('base64');
    registerSecret(basic);
    out.authorization = `Basic ${basic}`;
    out.describe = `basic auth (user ${a.username}, infra.registry.auth.password)`;
  } else if (a?.tokenEnv) {
    const token = env[a.tokenEnv];
    if (!token)
      throw new ParityError('PARITY_BAD_INPUT', `environment variable ${a.tokenEnv} (infra.registry.auth.tokenEnv) is not set`, {
        hint: `export ${a.tokenEnv}=<bearer token> before running parity`,
      });
    registerSecret(token);
    out.authorization = `Bearer ${token}`;
    out.describe = `bearer token (infra.registry.auth.tokenEnv ${a.tokenEnv})`;
  }
  return out;
}
