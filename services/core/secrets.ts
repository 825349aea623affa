/**
 * Secret values known to this process (passwords from `${VAR}` interpolation, every value in a
 * credential position of the spec, connection URLs). Every log line and every printed document
 * passes through `redact`, so a secret that reaches a message by accident is still never shown.
 */
const secrets = new Set<string>();

export const REDACTED = '[redacted]';

export function registerSecret(value: string | undefined): void {
  // Very short values would mangle ordinary output; they are not credible secrets either.
  if (value && value.length >= 4) secrets.add(value);
}

/**
 * Query parameters and key=value settings that carry credentials: libpq's password, sslpassword,
 * sslkey (and passfile), and the usual token/secret/key names of HTTP endpoints.
 */
const SECRET_PARAM = String.raw`(?:password|passwd|pwd|pass|sslpassword|sslkey|sslcert|sslrootcert|passfile|secret|client_secret|token|access_token|refresh_token|id_token|api[_-]?key|apikey|key|auth|authorization|signature|sig|sasl[_a-z.-]*|credentials?)`;
const QUERY_SECRET = new RegExp(String.raw`([?&;]${SECRET_PARAM}=)([^&#\s'"]*)`, 'gi');
/** libpq keyword/value strings: `host=db password=pw`. */
const KEYWORD_SECRET = /(^|[\s,{(])((?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s'",})]+)/gi;
/**
 * URL userinfo `scheme://user:password@host`: the password runs to the last `@` before the host, so
 * a password containing `@` (written unencoded) is hidden whole, not up to its first `@`.
 */
const URL_USERINFO = /([a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)(\S*?)@(?=[^@\s/?#]*(?:[/?#\s'",)]|$))/gi;

/**
 * Hides the credentials of any URL in `text`: the password of its userinfo
 * (postgres://u:pw@host/db -> postgres://u:[redacted]@host/db) and credential query parameters
 * (?password=..., ?sslpassword=..., ?sslkey=..., ?token=...), and libpq `password=` settings.
 */
export function redactUrl(text: string): string {
  return text.replace(URL_USERINFO, `$1${REDACTED}@`).replace(QUERY_SECRET, `$1${REDACTED}`).replace(KEYWORD_SECRET, `$1$2${REDACTED}`);
}

/**
 * A URL as shown to people (the backfill's HTTP probe, status tables): scheme, host, port and path;
 * the userinfo and the whole query string are replaced, whatever their names.
 */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    const auth = u.username || u.password ? `${REDACTED}@` : '';
    return `${u.protocol}//${auth}${u.host}${u.pathname}${u.search ? `?${REDACTED}` : ''}${u.hash ? '#…' : ''}`;
  } catch {
    return redactUrl(url.replace(/\?.*$/s, `?${REDACTED}`));
  }
}

export function redact(text: string): string {
  let out = text;
  // Registered values first: a password with `@` is hidden whole before the URL rule looks at it.
  for (const secret of secrets) {
    if (out.includes(secret)) out = out.split(secret).join(REDACTED);
  }
  return redactUrl(out);
}

/** Field names whose value is a credential wherever they appear in the spec. */
const CREDENTIAL_FIELD = /password|passwd|passphrase|secret|token|credential|api_?key|private_?key|sslkey/i;
/** Inside a `tls`/`ssl` section, the private key and its passphrase; inside `sasl`, everything but the mechanism. */
const TLS_SECRET_FIELD = /^(key|pfx|passphrase)$/i;

/**
 * Registers every value in a credential position of a parsed spec, whatever the environment
 * variable it came from was called: URL passwords and credential query parameters, the values of
 * password/secret/token/key fields, TLS private keys and SASL settings.
 */
export function registerCredentials(value: unknown, key = '', section = ''): void {
  if (typeof value === 'string') {
    // `...Env` fields (kafka.security.sasl.tokenEnv) hold the NAME of a variable, not its value.
    const namesVariable = /Env$/.test(key);
    const inSasl = section === 'sasl' && !/^(mechanism|username|user)$/i.test(key);
    const inTls = (section === 'tls' || section === 'ssl') && TLS_SECRET_FIELD.test(key);
    if (!namesVariable && (inSasl || inTls || CREDENTIAL_FIELD.test(key))) registerSecret(value);
    for (const m of value.matchAll(/[a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:(\S*?)@(?=[^@\s/?#]*(?:[/?#\s]|$))/gi))
      registerSecret(decodeOrSelf(m[1]));
    for (const m of value.matchAll(new RegExp(QUERY_SECRET.source, 'gi'))) registerSecret(decodeOrSelf(m[2]));
    return;
  }
  if (Array.isArray(value)) {
    for (const v of value) registerCredentials(v, key, section);
    return;
  }
  if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) registerCredentials(v, k, /^(sasl|tls|ssl)$/i.test(k) ? k.toLowerCase() : section);
  }
}

function decodeOrSelf(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  try {
    const decoded = decodeURIComponent(text);
    // Both forms can reach a message: the URL as written and the driver's decoded password.
    registerSecret(text);
    return decoded;
  } catch {
    return text;
  }
}

/** Test hook: forget registered secrets. */
export function clearSecrets(): void {
  secrets.clear();
}
