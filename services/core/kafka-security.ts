/**
 * Kafka connection security, configured once in the spec (`infra.kafka.security`) and used by every
 * Kafka client parity opens: @platformatic/kafka's admin, consumers and producer (clients.ts), and
 * the CDC's hand-written produce path (connectors/kafka-sink/produce-client.ts).
 *
 * The spec names files and environment variables, never secret values: the SASL password must be a
 * `${VAR}` reference, an OAUTHBEARER token is read from the environment variable the spec names, and
 * TLS keys are read from files. `resolveKafkaSecurity` turns the validated settings into what the
 * clients take (file contents, the token), registering every secret so that no output shows it.
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import { z } from 'zod';
import { ParityError } from './errors.js';
import { registerSecret } from './secrets.js';

export const KAFKA_SECURITY_PROTOCOLS = ['PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL'] as const;
export const KAFKA_SASL_MECHANISMS = ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512', 'OAUTHBEARER'] as const;
export type KafkaSaslMechanism = (typeof KAFKA_SASL_MECHANISMS)[number];

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** A value that is exactly one `${VAR}` reference (no default: a default would be a literal secret). */
const VARIABLE_ONLY = /^\$\{[A-Za-z_][A-Za-z0-9_]*\}$/;

/** `infra.kafka.security` in the spec. */
export const kafkaSecuritySchema = z
  .strictObject({
    protocol: z.enum(KAFKA_SECURITY_PROTOCOLS).default('PLAINTEXT'),
    tls: z
      .strictObject({
        /** PEM file of the CA(s) that signed the brokers' certificates; default: Node's public CAs. */
        ca: z.string().min(1).optional(),
        /** PEM client certificate (mTLS); with `key`. */
        cert: z.string().min(1).optional(),
        /** PEM client private key (mTLS); with `cert`. */
        key: z.string().min(1).optional(),
        /** Check that the broker's certificate names the host connected to (default true). */
        verifyHostname: z.boolean().default(true),
        /** TLS server name (SNI) and the name checked in the certificate, when it differs from the broker host. */
        servername: z.string().min(1).optional(),
      })
      .optional(),
    sasl: z
      .strictObject({
        mechanism: z.enum(KAFKA_SASL_MECHANISMS),
        username: z.string().min(1).optional(),
        /** Only as `${VAR}`. */
        password: z.string().min(1).optional(),
        /** OAUTHBEARER: the name of the environment variable holding the token (read at connect time). */
        tokenEnv: z.string().regex(ENV_NAME, 'the name of an environment variable, e.g. KAFKA_OAUTH_TOKEN').optional(),
      })
      .optional(),
  })
  .superRefine((s, ctx) => {
    const usesSasl = s.protocol.startsWith('SASL_');
    const usesTls = s.protocol.endsWith('SSL');
    if (usesSasl && !s.sasl)
      ctx.addIssue({
        code: 'custom',
        path: ['sasl'],
        message: `protocol ${s.protocol} needs a sasl section (mechanism, username, password: \${VAR})`,
      });
    if (!usesSasl && s.sasl)
      ctx.addIssue({
        code: 'custom',
        path: ['protocol'],
        message: `a sasl section needs protocol SASL_SSL (or SASL_PLAINTEXT), not ${s.protocol}`,
      });
    if (!usesTls && s.tls)
      ctx.addIssue({ code: 'custom', path: ['protocol'], message: `a tls section needs protocol SSL or SASL_SSL, not ${s.protocol}` });
    if (s.tls && (s.tls.cert === undefined) !== (s.tls.key === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['tls', s.tls.cert === undefined ? 'cert' : 'key'],
        message: 'client certificates (mTLS) need both tls.cert and tls.key',
      });
    }
    const sasl = s.sasl;
    if (!sasl) return;
    if (sasl.mechanism === 'OAUTHBEARER') {
      if (!sasl.tokenEnv)
        ctx.addIssue({
          code: 'custom',
          path: ['sasl', 'tokenEnv'],
          message: 'OAUTHBEARER needs tokenEnv: the name of the environment variable holding the token',
        });
      if (sasl.password !== undefined)
        ctx.addIssue({ code: 'custom', path: ['sasl', 'password'], message: 'OAUTHBEARER takes a token (tokenEnv), not a password' });
    } else {
      if (!sasl.username) ctx.addIssue({ code: 'custom', path: ['sasl', 'username'], message: `${sasl.mechanism} needs a username` });
      if (!sasl.password)
        ctx.addIssue({ code: 'custom', path: ['sasl', 'password'], message: `${sasl.mechanism} needs a password, as \${VAR}` });
      if (sasl.tokenEnv)
        ctx.addIssue({
          code: 'custom',
          path: ['sasl', 'tokenEnv'],
          message: `tokenEnv is for OAUTHBEARER; ${sasl.mechanism} takes username and password`,
        });
    }
  });

export type KafkaSecuritySpec = z.output<typeof kafkaSecuritySchema>;

/**
 * Problems of the raw (not yet interpolated) spec that the schema cannot see: a SASL password written
 * literally instead of as a `${VAR}` reference. Returns [path, message, hint] triples.
 */
export function literalKafkaSecrets(raw: unknown): { path: string; message: string; hint: string }[] {
  const sasl = (raw as { infra?: { kafka?: { security?: { sasl?: { password?: unknown } } } } } | null)?.infra?.kafka?.security?.sasl;
  const password = sasl?.password;
  if (password === undefined || password === null) return [];
  if (typeof password === 'string' && VARIABLE_ONLY.test(password.trim())) return [];
  return [
    {
      path: 'infra.kafka.security.sasl.password',
      message: 'the Kafka password is written in the spec; secrets are only accepted as ${VAR} references',
      hint: 'write password: ${KAFKA_PASSWORD} and export KAFKA_PASSWORD=... in the environment (or a Kubernetes Secret / .env)',
    },
  ];
}

/** SASL credentials as the clients take them. */
export interface KafkaSasl {
  mechanism: KafkaSaslMechanism;
  username?: string;
  password?: string;
  token?: string;
}

/** Security settings resolved for the clients: file contents read, the token taken from the environment. */
export interface KafkaSecurity {
  protocol: (typeof KAFKA_SECURITY_PROTOCOLS)[number];
  /** node:tls options (CA, client cert and key, hostname check); undefined for PLAINTEXT / SASL_PLAINTEXT. */
  tls?: TlsOptions;
  sasl?: KafkaSasl;
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

/**
 * Reads the files and the token the settings name. Throws PARITY_BAD_INPUT (exit 2) when a file
 * cannot be read or the token's variable is unset. `undefined` settings mean PLAINTEXT.
 */
export function resolveKafkaSecurity(spec: KafkaSecuritySpec | undefined, env: NodeJS.ProcessEnv = process.env): KafkaSecurity {
  if (!spec || spec.protocol === 'PLAINTEXT') return { protocol: 'PLAINTEXT' };
  const out: KafkaSecurity = { protocol: spec.protocol };
  if (spec.protocol.endsWith('SSL')) {
    const t = spec.tls;
    const tls: TlsOptions = { rejectUnauthorized: true };
    if (t?.ca) tls.ca = readPem(t.ca, 'kafka.security.tls.ca');
    if (t?.cert) tls.cert = readPem(t.cert, 'kafka.security.tls.cert');
    if (t?.key) {
      const key = readPem(t.key, 'kafka.security.tls.key');
      registerSecret(key.toString('utf8').trim());
      tls.key = key;
    }
    if (t?.servername) tls.servername = t.servername;
    // The chain is still verified against the CA; only the name check is skipped.
    if (t && !t.verifyHostname) tls.checkServerIdentity = () => undefined;
    out.tls = tls;
  }
  if (spec.sasl) {
    const s = spec.sasl;
    const sasl: KafkaSasl = { mechanism: s.mechanism };
    if (s.username) sasl.username = s.username;
    if (s.password) {
      registerSecret(s.password);
      sasl.password = s.password;
    }
    if (s.mechanism === 'OAUTHBEARER' && s.tokenEnv) {
      const token = env[s.tokenEnv];
      if (!token) {
        throw new ParityError('PARITY_BAD_INPUT', `environment variable ${s.tokenEnv} (kafka.security.sasl.tokenEnv) is not set`, {
          hint: `export ${s.tokenEnv}=<OAuth bearer token> before running parity`,
        });
      }
      registerSecret(token);
      sasl.token = token;
    }
    out.sasl = sasl;
  }
  return out;
}

/** A short description for messages: protocol and mechanism, never a credential. */
export function describeKafkaSecurity(s: KafkaSecurity | undefined): string {
  if (!s || s.protocol === 'PLAINTEXT') return 'PLAINTEXT';
  return s.sasl ? `${s.protocol} ${s.sasl.mechanism}` : s.protocol;
}
