/**
 * The stack's connection security for tests (issue 16), read from the settings `parity stack env`
 * prints: on the plaintext stack every helper here gives the plain settings, on the secured stack
 * (`parity stack up --secure`: PARITY_KAFKA_SECURITY_PROTOCOL, PARITY_CA_FILE, ... set) the TLS,
 * SASL, Redis ACL and registry basic-auth settings. Tests that build specs or clients through these
 * run unchanged against either stack.
 *
 * Specs get secrets only as `${VAR}` references (spec validation refuses literal ones), so a spec
 * built here must be parsed with SPEC_ENV (or run by a CLI whose environment has the stack's settings).
 */
import { createKafka, type KafkaClients } from '../../services/core/clients.js';
import type { RedisSpec, RegistrySpec } from '../../services/core/connection-security.js';
import { kafkaSecuritySchema, resolveKafkaSecurity, type KafkaSecurity } from '../../services/core/kafka-security.js';
import { KAFKA_BROKERS, STACK } from './stack.js';

/** True when the settings are the secured stack's. */
export const STACK_SECURE = STACK.PARITY_KAFKA_SECURITY_PROTOCOL !== undefined && STACK.PARITY_KAFKA_SECURITY_PROTOCOL !== 'PLAINTEXT';

/** The environment a test spec's `${VAR}` references are resolved against: the process's, then the stack's settings. */
export const SPEC_ENV: NodeJS.ProcessEnv = { ...process.env, ...STACK };

/** `infra.kafka.security` as a spec carries it (password as `${PARITY_KAFKA_PASSWORD}`), or undefined on the plaintext stack. */
export function kafkaSecuritySpec(): Record<string, unknown> | undefined {
  if (!STACK_SECURE) return undefined;
  return {
    protocol: STACK.PARITY_KAFKA_SECURITY_PROTOCOL,
    tls: { ca: STACK.PARITY_KAFKA_CA ?? STACK.PARITY_CA_FILE },
    sasl: { mechanism: STACK.PARITY_KAFKA_SASL_MECHANISM, username: STACK.PARITY_KAFKA_USER, password: '${PARITY_KAFKA_PASSWORD}' },
  };
}

/** The resolved Kafka security of the stack (what createKafka takes). */
export const KAFKA_SECURITY: KafkaSecurity = STACK_SECURE
  ? resolveKafkaSecurity(
      kafkaSecuritySchema.parse({
        ...kafkaSecuritySpec(),
        sasl: { mechanism: STACK.PARITY_KAFKA_SASL_MECHANISM, username: STACK.PARITY_KAFKA_USER, password: STACK.PARITY_KAFKA_PASSWORD },
      }),
    )
  : { protocol: 'PLAINTEXT' };

/** Kafka clients of the stack, with its security. */
export function stackKafka(clientId: string, brokers: string[] = KAFKA_BROKERS): KafkaClients {
  return createKafka(brokers, { clientId, security: KAFKA_SECURITY });
}

/** The registry settings of the stack, resolved (password included): for clients built in a test. */
export const REGISTRY: RegistrySpec = STACK_SECURE
  ? {
      url: STACK.PARITY_REGISTRY_URL,
      tls: { ca: STACK.PARITY_CA_FILE!, verifyHostname: true },
      ...(STACK.PARITY_REGISTRY_PASSWORD
        ? { auth: { username: STACK.PARITY_REGISTRY_USER!, password: STACK.PARITY_REGISTRY_PASSWORD } }
        : {}),
    }
  : { url: STACK.PARITY_REGISTRY_URL };

/** The Redis settings of the stack, resolved (password included): for clients built in a test. */
export const REDIS: RedisSpec = STACK_SECURE
  ? {
      url: redisUrlWithoutPassword(),
      username: STACK.PARITY_REDIS_USER!,
      password: STACK.PARITY_REDIS_PASSWORD!,
      tls: { ca: STACK.PARITY_CA_FILE!, verifyHostname: true },
    }
  : { url: STACK.PARITY_REDIS_URL };

function redisUrlWithoutPassword(): string {
  const u = new URL(STACK.PARITY_REDIS_URL);
  u.username = '';
  u.password = '';
  return u.toString().replace(/\/$/, '');
}

/**
 * The spec's `infra` section for the stack: on the secured stack with `infra.kafka.security`, the
 * registry's CA and basic auth, Redis over rediss:// as the ACL user, every password as a `${VAR}`.
 */
export function stackInfra(brokers: string[] = KAFKA_BROKERS): Record<string, unknown> {
  if (!STACK_SECURE) {
    return { kafka: { brokers }, registry: { url: STACK.PARITY_REGISTRY_URL }, redis: { url: STACK.PARITY_REDIS_URL } };
  }
  return {
    kafka: { brokers, security: kafkaSecuritySpec() },
    registry: {
      url: STACK.PARITY_REGISTRY_URL,
      tls: { ca: STACK.PARITY_CA_FILE },
      ...(STACK.PARITY_REGISTRY_PASSWORD
        ? { auth: { username: STACK.PARITY_REGISTRY_USER, password: '${PARITY_REGISTRY_PASSWORD}' } }
        : {}),
    },
    redis: {
      url: redisUrlWithoutPassword(),
      username: STACK.PARITY_REDIS_USER,
      password: '${PARITY_REDIS_PASSWORD}',
      tls: { ca: STACK.PARITY_CA_FILE },
    },
  };
}

/** `stackInfra()` as dotted-path overrides for writeTestSpec (test/support/spec.ts). */
export function stackInfraOverrides(brokers: string[] = KAFKA_BROKERS): Record<string, unknown> {
  const infra = stackInfra(brokers);
  return { 'infra.kafka': infra.kafka, 'infra.registry': infra.registry, 'infra.redis': infra.redis };
}
