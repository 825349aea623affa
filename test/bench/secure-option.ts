/**
 * `--secure` on a benchmark's command line (issue 16): run it against the secured local stack
 * (`parity stack up --secure`) instead of the plaintext one. Imported first, before the test-support
 * modules read the stack's settings: it sets PARITY_STACK_SECURE=1 and the settings `parity stack env
 * --secure` prints (its state dir and ports follow PARITY_STATE_DIR and the PARITY_*_PORT variables,
 * as for the stack itself), so every spec and client of the benchmark gets TLS, SASL_SSL + SCRAM and
 * the registry's basic auth through test/support/security.ts. Without `--secure` it does nothing.
 */
import { stackConfig, stackEnv } from '../../services/stack/config.js';

/** True when the benchmark was started with `--secure`. */
export const SECURE = process.argv.includes('--secure');

if (SECURE) {
  process.env.PARITY_STACK_SECURE = '1';
  const env = stackEnv(stackConfig(process.env, { secure: true }));
  if (!env.PARITY_KAFKA_PASSWORD) {
    process.stderr.write('--secure: the secured stack has no settings yet; start it first with `parity stack up --secure`\n');
    process.exit(2);
  }
  for (const [key, value] of Object.entries(env)) if (value !== undefined) process.env[key] = value;
  // Child processes (the connector, pg_recvlogical's libpq reads sslrootcert itself) trust the stack's CA.
  process.env.NODE_EXTRA_CA_CERTS ??= env.PARITY_CA_FILE;
}
