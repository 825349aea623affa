/**
 * Kafka failures as ParityErrors. Retry helpers decide only from the `retriable` flag, so the one
 * judgement made here matters: a broker that refuses who we are (authentication), what we may do
 * (authorization) or how we speak (unsupported version or mechanism) answers the same way on every
 * retry, so those stop at once with a hint; everything else (a broker restarting, a leader moving, a
 * coordinator loading, a timeout) is PARITY_KAFKA, retriable.
 */
import { ParityError } from './errors.js';

/** Kafka protocol error names (and @platformatic/kafka client codes) no retry can fix. */
const FATAL: ReadonlyMap<string, string> = new Map([
  [
    'SASL_AUTHENTICATION_FAILED',
    'check kafka.security.sasl.username/password (or the token of tokenEnv) and kafka.security.sasl.mechanism against what the broker enables',
  ],
  ['UNSUPPORTED_SASL_MECHANISM', 'set kafka.security.sasl.mechanism to one the broker enables (sasl.enabled.mechanisms)'],
  // Seen with @platformatic/kafka and an expired OAUTHBEARER token: the RFC 7628 exchange is left
  // unfinished after the broker refuses the token, and the broker answers the client's next request
  // with this state error rather than SASL_AUTHENTICATION_FAILED.
  [
    'ILLEGAL_SASL_STATE',
    'the broker rejected the SASL exchange: check the listener and kafka.security.sasl.mechanism; with OAUTHBEARER, the token in the variable kafka.security.sasl.tokenEnv names may be expired or invalid (renew it)',
  ],
  ['TOPIC_AUTHORIZATION_FAILED', 'grant the principal the ACL it needs on the topic (WRITE to produce, READ to consume, CREATE to create)'],
  ['GROUP_AUTHORIZATION_FAILED', 'grant the principal READ on the consumer group'],
  ['CLUSTER_AUTHORIZATION_FAILED', 'grant the principal IDEMPOTENT_WRITE (producers) or CREATE (topics) on the cluster'],
  ['TRANSACTIONAL_ID_AUTHORIZATION_FAILED', 'grant the principal WRITE on the transactional id'],
  ['DELEGATION_TOKEN_AUTHORIZATION_FAILED', 'grant the principal the delegation-token ACL'],
  ['UNSUPPORTED_VERSION', 'the broker does not speak a protocol version parity needs: use Kafka 3.5 or later'],
  ['PLT_KFK_AUTHENTICATION', 'check kafka.security.sasl (mechanism, username/password or tokenEnv)'],
  // The client refuses its own settings (e.g. "Broker requires TLS." for a plaintext client on a TLS listener).
  ['PLT_KFK_USER', 'check kafka.security: the protocol (SSL / SASL_SSL for a TLS listener), tls and sasl must match the broker listener'],
  // node:tls verification failures: the broker's certificate chain or name.
  [
    'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    'the broker certificate is not signed by a trusted CA: point kafka.security.tls.ca at the CA that signed it',
  ],
  [
    'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
    'the broker certificate is not signed by a trusted CA: point kafka.security.tls.ca at the CA that signed it',
  ],
  ['SELF_SIGNED_CERT_IN_CHAIN', 'the broker certificate chain ends in an untrusted CA: point kafka.security.tls.ca at it'],
  ['DEPTH_ZERO_SELF_SIGNED_CERT', 'the broker certificate is self-signed: point kafka.security.tls.ca at it'],
  ['CERT_HAS_EXPIRED', 'the broker certificate has expired: renew it on the broker'],
  [
    'ERR_TLS_CERT_ALTNAME_INVALID',
    'the broker certificate does not name the host connected to: set kafka.security.tls.servername, or connect with the name in the certificate',
  ],
  ['PLT_KFK_UNSUPPORTED_API', 'the broker does not speak a protocol version parity needs: use Kafka 3.5 or later'],
  ['PLT_KFK_UNSUPPORTED', 'the broker or the client lacks a feature this operation needs'],
  ['PLT_KFK_UNSUPPORTED_COMPRESSION', 'use a compression codec the client supports'],
]);

/** Kafka protocol error numbers of the fatal names (for the hand-written produce path). */
const FATAL_CODES: ReadonlyMap<number, string> = new Map([
  [29, 'TOPIC_AUTHORIZATION_FAILED'],
  [30, 'GROUP_AUTHORIZATION_FAILED'],
  [31, 'CLUSTER_AUTHORIZATION_FAILED'],
  [33, 'UNSUPPORTED_SASL_MECHANISM'],
  [34, 'ILLEGAL_SASL_STATE'],
  [35, 'UNSUPPORTED_VERSION'],
  [53, 'TRANSACTIONAL_ID_AUTHORIZATION_FAILED'],
  [58, 'SASL_AUTHENTICATION_FAILED'],
  [65, 'DELEGATION_TOKEN_AUTHORIZATION_FAILED'],
]);

/** Every protocol error name, error number and client code found in `err`, its causes and its aggregated errors. */
export function kafkaErrorIds(err: unknown): Set<string | number> {
  const ids = new Set<string | number>();
  const seen = new Set<unknown>();
  const visit = (e: unknown, depth: number): void => {
    if (!e || typeof e !== 'object' || seen.has(e) || depth > 8) return;
    seen.add(e);
    const o = e as { apiId?: unknown; apiCode?: unknown; code?: unknown; kafkaCode?: unknown; errors?: unknown; cause?: unknown };
    if (typeof o.apiId === 'string') ids.add(o.apiId);
    if (typeof o.apiCode === 'number') ids.add(o.apiCode);
    if (typeof o.code === 'string' && (o.code.startsWith('PLT_KFK_') || FATAL.has(o.code))) ids.add(o.code);
    if (typeof o.kafkaCode === 'number') ids.add(o.kafkaCode);
    // The hand-written produce path's ProduceError carries the Kafka error number as `code`.
    if (typeof o.code === 'number') ids.add(o.code);
    if (Array.isArray(o.errors)) for (const inner of o.errors) visit(inner, depth + 1);
    visit(o.cause, depth + 1);
  };
  visit(err, 0);
  return ids;
}

/**
 * The messages nested under `err` (causes, aggregated errors), first branch only, with the broker's
 * own error message: a refused login reads "Listing topics failed." at the top and names the broker
 * ("Connection to 127.0.0.1:9094 failed.") and the reason only below.
 */
function causeChain(err: unknown): string {
  const parts: string[] = [];
  let e = err as { message?: unknown; cause?: unknown; errors?: unknown; serverErrorMessage?: unknown } | undefined;
  for (let depth = 0; e && typeof e === 'object' && depth < 8; depth++) {
    if (depth > 0 && typeof e.message === 'string' && !parts.includes(e.message)) parts.push(e.message.replace(/\.$/, ''));
    if (typeof e.serverErrorMessage === 'string' && e.serverErrorMessage) parts.push(`broker: ${e.serverErrorMessage}`);
    e = (Array.isArray(e.errors) && e.errors.length > 0 ? e.errors[0] : e.cause) as typeof e;
  }
  return parts.length > 0 ? ` (${parts.join(': ')})` : '';
}

/** The hint of the first fatal (never retriable) Kafka error in `err`, or null if a retry may help. */
export function fatalKafkaHint(err: unknown): string | null {
  for (const id of kafkaErrorIds(err)) {
    const name = typeof id === 'number' ? FATAL_CODES.get(id) : id;
    const hint = name === undefined ? undefined : FATAL.get(name);
    if (hint !== undefined) return hint;
  }
  return null;
}

/**
 * `err` (from @platformatic/kafka, the wire path, or already a ParityError) as a PARITY_KAFKA error
 * whose message starts with `what`; retriable unless a fatal error is found in it. A ParityError
 * passes through unchanged.
 */
export function kafkaError(err: unknown, what: string, hint?: string): ParityError {
  if (err instanceof ParityError) return err;
  const fatal = fatalKafkaHint(err);
  const message = `${what}: ${(err as Error)?.message ?? String(err)}${fatal === null ? '' : causeChain(err)}`;
  const finalHint = fatal ?? hint;
  return new ParityError('PARITY_KAFKA', message, { cause: err, retriable: fatal === null, ...(finalHint ? { hint: finalHint } : {}) });
}
