/**
 * Secret values known to this process (passwords from `${VAR}` interpolation, connection URLs).
 * Every log line and every printed document passes through `redact`, so a secret that reaches a
 * message by accident is still never shown.
 */
const secrets = new Set<string>();

export const REDACTED = '[redacted]';

export function registerSecret(value: string | undefined): void {
  // Very short values would mangle ordinary output; they are not credible secrets either.
  if (value && value.length >= 4) secrets.add(value);
}

/** Hides the password of any URL with credentials, e.g. postgres://u:pw@host/db -> postgres://u:[redacted]@host/db. */
export function redactUrl(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)([^@\s]+)@/gi, `$1${REDACTED}@`);
}

export function redact(text: string): string {
  let out = redactUrl(text);
  for (const secret of secrets) {
    if (out.includes(secret)) out = out.split(secret).join(REDACTED);
  }
  return out;
}

/** Test hook: forget registered secrets. */
export function clearSecrets(): void {
  secrets.clear();
}
