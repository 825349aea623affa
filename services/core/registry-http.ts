/**
 * The one HTTP path to the schema registry for parity's own registry clients (the CDC's registration
 * client, the compat gate's ccompat client): a `fetch`-shaped function that carries `infra.registry`'s
 * CA (node:https, since the global fetch takes no per-request CA) and Authorization header, and turns
 * certificate and authentication refusals into errors that name the setting to fix.
 */
import { request as httpsRequest, Agent as HttpsAgent } from 'node:https';
import { ParityError } from './errors.js';
import { resolveRegistrySecurity, type RegistrySecurity, type RegistrySpec } from './connection-security.js';

/** Node's TLS error codes for a certificate the client will not trust. */
const TLS_CODES = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|DEPTH_ZERO|UNABLE_TO_GET_ISSUER/;

function causeCode(err: unknown): string {
  let e = err as { code?: string; cause?: unknown } | undefined;
  for (let i = 0; e && i < 5; i++) {
    if (typeof e.code === 'string') return e.code;
    e = e.cause as typeof e;
  }
  return '';
}

/**
 * A refusal that retrying cannot fix, or undefined: an untrusted, expired or misnamed certificate
 * (infra.registry.tls.ca), an HTTP answer to an https:// URL, or HTTP 401/403 (infra.registry.auth).
 */
export function registrySecurityError(url: string, err: unknown, status?: number, security?: RegistrySecurity): ParityError | undefined {
  if (status === 401 || status === 403) {
    return new ParityError(
      'PARITY_BAD_INPUT',
      `schema registry ${url} refused the credentials (HTTP ${status}; ${security?.describe ?? 'no authentication'})`,
      {
        hint: 'check infra.registry.auth: the username and password variable, or the token in the variable tokenEnv names (an expired token must be renewed)',
        retriable: false,
      },
    );
  }
  if (err === undefined) return undefined;
  const code = causeCode(err);
  if (TLS_CODES.test(code)) {
    return new ParityError('PARITY_BAD_INPUT', `schema registry ${url}: TLS certificate not accepted (${code})`, {
      cause: err,
      hint:
        code === 'CERT_HAS_EXPIRED'
          ? 'the registry certificate has expired: renew it'
          : 'set infra.registry.tls.ca to the CA that signed the registry certificate (and check the host name it names)',
      retriable: false,
    });
  }
  if (code === 'EPROTO' || /wrong version number|packet length too long/i.test(String((err as Error)?.message ?? ''))) {
    return new ParityError('PARITY_BAD_INPUT', `schema registry ${url}: the server does not speak TLS on this port`, {
      cause: err,
      hint: 'check infra.registry.url (https:// or http://)',
      retriable: false,
    });
  }
  return undefined;
}

/**
 * A `fetch` for the registry: with a CA (or client certificate) a node:https request, else the global
 * fetch; either way with the Authorization header of `infra.registry.auth`.
 */
export function registryFetch(
  registry: RegistrySpec | { url: string },
  security: RegistrySecurity = resolveRegistrySecurity(registry),
): typeof fetch {
  const auth = security.authorization;
  const tls = security.tls;
  const custom =
    tls && (tls.ca !== undefined || tls.cert !== undefined || tls.checkServerIdentity !== undefined || tls.servername !== undefined);
  const agent = custom ? new HttpsAgent({ ...tls, keepAlive: true }) : undefined;
  const withAuth = (headers: RequestInit['headers']): Record<string, string> => {
    const h: Record<string, string> = {};
    new Headers(headers).forEach((v, k) => {
      h[k] = v;
    });
    if (auth) h.authorization = auth;
    return h;
  };
  if (!agent) {
    return ((input: string | URL | Request, init?: RequestInit) =>
      fetch(input, { ...init, headers: withAuth(init?.headers) })) as typeof fetch;
  }
  return ((input: string | URL | Request, init?: RequestInit) =>
    new Promise<Response>((resolve, reject) => {
      const url = typeof input === 'string' ? input : input instanceof URL ? input.toString() : input.url;
      const body = init?.body === undefined || init.body === null ? undefined : String(init.body);
      const req = httpsRequest(
        url,
        { method: init?.method ?? 'GET', headers: withAuth(init?.headers), agent, ...(init?.signal ? { signal: init.signal } : {}) },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const headers = new Headers();
            for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers.set(k, Array.isArray(v) ? v.join(', ') : v);
            const status = res.statusCode ?? 500;
            // Response refuses a body for 204/304.
            resolve(new Response(status === 204 || status === 304 ? null : Buffer.concat(chunks), { status, headers }));
          });
        },
      );
      req.on('error', reject);
      req.end(body);
    })) as typeof fetch;
}
