/**
 * SASL mechanisms of the CDC's hand-written produce path, as pure client state machines over the
 * bytes Kafka's SaslAuthenticate carries: PLAIN (RFC 4616), SCRAM-SHA-256 and SCRAM-SHA-512
 * (RFC 5802, RFC 7677) and OAUTHBEARER (RFC 7628). produce-client.ts sends what they produce.
 *
 * SCRAM also checks the broker: its final message must carry the server signature derived from the
 * same password, so a broker that does not know the password cannot pass for one that does.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import type { KafkaSasl, KafkaSaslMechanism } from '../../services/core/kafka-security.js';

/** One client side of a SASL exchange. */
export interface SaslSession {
  readonly mechanism: KafkaSaslMechanism;
  /** The client's first message. */
  start(): Buffer;
  /** The next client message for the server's `challenge`, or null when the exchange is complete. */
  respond(challenge: Buffer): Buffer | null;
}

/** An answer of the broker that breaks the mechanism (not a refusal: a refusal is an error code). */
export class SaslProtocolError extends Error {}

/** A session for `sasl`; `nonce` only for tests (RFC 7677's vector). */
export function saslSession(sasl: KafkaSasl, nonce?: string): SaslSession {
  switch (sasl.mechanism) {
    case 'PLAIN':
      return plain(sasl.username ?? '', sasl.password ?? '');
    case 'SCRAM-SHA-256':
      return new ScramSession('SCRAM-SHA-256', 'sha256', sasl.username ?? '', sasl.password ?? '', nonce);
    case 'SCRAM-SHA-512':
      return new ScramSession('SCRAM-SHA-512', 'sha512', sasl.username ?? '', sasl.password ?? '', nonce);
    case 'OAUTHBEARER':
      return oauthBearer(sasl.token ?? '');
  }
}

function plain(username: string, password: string): SaslSession {
  return {
    mechanism: 'PLAIN',
    start: () => Buffer.from(`\u0000${username}\u0000${password}`, 'utf8'),
    respond: () => null,
  };
}

/**
 * RFC 7628 section 3.1: gs2 header, then kvpairs separated by ^A, ending with ^A^A. A refusal comes
 * as a JSON error challenge (section 3.2.2) which the client answers with a single ^A; the broker
 * then fails the exchange with its error code.
 */
function oauthBearer(token: string): SaslSession {
  let refusal: string | null = null;
  return {
    mechanism: 'OAUTHBEARER',
    start: () => Buffer.from(`n,,\u0001auth=Bearer ${token}\u0001\u0001`, 'utf8'),
    respond: (challenge) => {
      // The broker accepted the ^A after an error challenge without failing: still a refusal.
      if (refusal !== null) throw new SaslProtocolError(`the broker refused the token: ${refusal}`);
      if (challenge.length === 0) return null;
      refusal = challenge.toString('utf8');
      return Buffer.from('\u0001', 'utf8');
    },
  };
}

/** RFC 5802 saslname: "=" and "," escaped. */
function saslName(name: string): string {
  return name.replace(/=/g, '=3D').replace(/,/g, '=2C');
}

function attributes(message: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of message.split(',')) {
    const eq = part.indexOf('=');
    if (eq === 1) out.set(part[0]!, part.slice(2));
  }
  return out;
}

/** RFC 5802 section 3, with the hash of RFC 7677 (SHA-256) or SHA-512. */
export class ScramSession implements SaslSession {
  private readonly clientNonce: string;
  private clientFirstBare = '';
  private serverSignature: Buffer | null = null;
  private done = false;

  constructor(
    readonly mechanism: 'SCRAM-SHA-256' | 'SCRAM-SHA-512',
    private readonly hash: 'sha256' | 'sha512',
    private readonly username: string,
    private readonly password: string,
    nonce?: string,
  ) {
    this.clientNonce = nonce ?? randomBytes(24).toString('base64').replace(/[=,]/g, '');
  }

  start(): Buffer {
    this.clientFirstBare = `n=${saslName(this.username)},r=${this.clientNonce}`;
    return Buffer.from(`n,,${this.clientFirstBare}`, 'utf8');
  }

  respond(challenge: Buffer): Buffer | null {
    const message = challenge.toString('utf8');
    if (this.serverSignature) return this.finish(message);
    const a = attributes(message);
    if (a.has('e')) throw new SaslProtocolError(`the broker ended ${this.mechanism}: ${a.get('e')}`);
    const nonce = a.get('r');
    const salt = a.get('s');
    const iterations = Number(a.get('i'));
    if (!nonce || !salt || !Number.isInteger(iterations) || iterations < 1)
      throw new SaslProtocolError(`the broker's ${this.mechanism} challenge is malformed`);
    if (!nonce.startsWith(this.clientNonce) || nonce.length === this.clientNonce.length)
      throw new SaslProtocolError(`the broker's ${this.mechanism} nonce does not extend ours`);
    const keyLength = this.hash === 'sha256' ? 32 : 64;
    const saltedPassword = pbkdf2Sync(this.password.normalize('NFKC'), Buffer.from(salt, 'base64'), iterations, keyLength, this.hash);
    const clientKey = this.hmac(saltedPassword, 'Client Key');
    const storedKey = createHash(this.hash).update(clientKey).digest();
    const withoutProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${message},${withoutProof}`;
    const clientSignature = this.hmac(storedKey, authMessage);
    const proof = Buffer.alloc(clientKey.length);
    for (let i = 0; i < proof.length; i++) proof[i] = clientKey[i]! ^ clientSignature[i]!;
    this.serverSignature = this.hmac(this.hmac(saltedPassword, 'Server Key'), authMessage);
    return Buffer.from(`${withoutProof},p=${proof.toString('base64')}`, 'utf8');
  }

  /** True once the broker proved it knows the password. */
  get verified(): boolean {
    return this.done;
  }

  private finish(message: string): null {
    const a = attributes(message);
    if (a.has('e')) throw new SaslProtocolError(`the broker refused ${this.mechanism}: ${a.get('e')}`);
    const v = Buffer.from(a.get('v') ?? '', 'base64');
    if (v.length !== this.serverSignature!.length || !timingSafeEqual(v, this.serverSignature!)) {
      throw new SaslProtocolError(
        `the broker's ${this.mechanism} server signature is wrong: it does not know this user's password (a broker impersonated?)`,
      );
    }
    this.done = true;
    return null;
  }

  private hmac(key: Buffer, text: string): Buffer {
    return createHmac(this.hash, key).update(text, 'utf8').digest();
  }
}
