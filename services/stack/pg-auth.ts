/**
 * Password authentication of the local PostgreSQL clusters: TCP connections use scram-sha-256 with a
 * password generated once per state dir; the Unix socket (a private folder) stays trusted so the stack
 * can set that password itself.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { pgPasswordFile } from './config.js';

/** pg_hba.conf of a local cluster: trust on the socket, scram-sha-256 on loopback TCP, nothing else. */
export const PG_HBA = [
  'local all all trust',
  'local replication all trust',
  'host all all 127.0.0.1/32 scram-sha-256',
  'host replication all 127.0.0.1/32 scram-sha-256',
  '',
].join('\n');

/** The state dir's password, generated (hex, URL-safe) and stored with mode 600 on first use. */
export function ensurePgPassword(stateDir: string): string {
  const file = pgPasswordFile(stateDir);
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const password = randomBytes(18).toString('hex');
  writeFileSync(file, `${password}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return password;
}

/**
 * The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5802/7677, PostgreSQL's text form).
 * Sending the verifier instead of the password keeps the password out of the server's log, even if
 * the statement fails and is logged.
 */
export function scramVerifier(password: string, salt: Buffer = randomBytes(16), iterations = 4096): string {
  const salted = pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}
