/**
 * The producer side's registry calls, over the Confluent-compatible REST API. Registration is a plain
 * `POST /subjects/{subject}/versions`: unlike @kafkajs/confluent-schema-registry's `register()` it never
 * rewrites a subject's compatibility config, which belongs to whoever owns the subject (the compat gate).
 */
import { ParityError } from '../../services/core/errors.js';
import type { RegistrySpec } from '../../services/core/connection-security.js';
import { resolveRegistrySecurity } from '../../services/core/connection-security.js';
import { registryFetch, registrySecurityError } from '../../services/core/registry-http.js';

export type SchemaFormat = 'avro' | 'json' | 'protobuf';

export interface RegistryClient {
  /** Registers `schema` under `subject` (idempotent: an identical schema returns its existing id). */
  register(subject: string, schema: unknown, format: SchemaFormat): Promise<number>;
  /**
   * The subject's latest registered schema (parsed JSON for Avro and JSON Schema, the text for
   * Protobuf), or null when the subject has none. Optional: a registry that cannot say is read as
   * holding nothing.
   */
  latest?(subject: string): Promise<RegisteredSchema | null>;
}

/** A registered version of a subject. */
export interface RegisteredSchema {
  id: number;
  version: number;
  schema: unknown;
}

export interface RegistryClientOptions {
  /** Base URL, e.g. http://127.0.0.1:18081/apis/ccompat/v7. */
  url: string;
  /** infra.registry's CA and client certificate (https://). */
  tls?: RegistrySpec['tls'];
  /** infra.registry's basic auth or bearer token. */
  auth?: RegistrySpec['auth'];
  fetch?: typeof fetch;
  timeoutMs?: number;
}

export function createRegistryClient(options: RegistryClientOptions): RegistryClient {
  const base = options.url.replace(/\/+$/, '');
  const security = resolveRegistrySecurity(options as RegistrySpec);
  const doFetch = options.fetch ?? registryFetch(options as RegistrySpec, security);
  const timeoutMs = options.timeoutMs ?? 10_000;
  /** The body of a registry answer, or its text as the message when it is not JSON. */
  const parse = async (response: Response): Promise<Record<string, unknown>> => {
    const text = await response.text();
    try {
      return text ? (JSON.parse(text) as Record<string, unknown>) : {};
    } catch {
      return { message: text };
    }
  };
  return {
    async latest(subject) {
      let response: Response;
      try {
        response = await doFetch(`${base}/subjects/${encodeURIComponent(subject)}/versions/latest`, {
          headers: { accept: 'application/vnd.schemaregistry.v1+json' },
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (err) {
        const refused = registrySecurityError(base, err);
        if (refused) throw refused;
        throw new ParityError('PARITY_CONNECTION', `schema registry unreachable while reading ${subject}: ${(err as Error).message}`, {
          cause: err,
          hint: 'check infra.registry.url and that the registry is running; parity retries by itself',
        });
      }
      const payload = await parse(response);
      // 404: no such subject (40401) or no version left in it (40402): nothing registered yet.
      if (response.status === 404) return null;
      const refused = registrySecurityError(base, undefined, response.status, security);
      if (refused) throw refused;
      if (!response.ok || typeof payload.schema !== 'string' || typeof payload.id !== 'number') {
        throw new ParityError(
          'PARITY_CONNECTION',
          `schema registry error reading ${subject}: ${String(payload.message ?? `HTTP ${response.status}`)}`,
          {
            details: { subject, status: response.status },
            hint: 'the registry answered with an error; parity retries by itself',
          },
        );
      }
      let schema: unknown = payload.schema;
      if (payload.schemaType !== 'PROTOBUF') {
        try {
          schema = JSON.parse(payload.schema);
        } catch {
          // Kept as text: the caller reads only what it recognises.
        }
      }
      return { id: payload.id, version: Number(payload.version), schema };
    },
    async register(subject, schema, format) {
      // A Protobuf schema is .proto text; Avro and JSON Schema travel as their JSON.
      const body: Record<string, unknown> = {
        schema: format === 'protobuf' && typeof schema === 'string' ? schema : JSON.stringify(schema),
      };
      if (format === 'json') body.schemaType = 'JSON';
      if (format === 'protobuf') body.schemaType = 'PROTOBUF';
      let response: Response;
      try {
        response = await doFetch(`${base}/subjects/${encodeURIComponent(subject)}/versions`, {
          method: 'POST',
          headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (err) {
        const refused = registrySecurityError(base, err);
        if (refused) throw refused;
        throw new ParityError('PARITY_CONNECTION', `schema registry unreachable while registering ${subject}: ${(err as Error).message}`, {
          cause: err,
          hint: 'check infra.registry.url and that the registry is running; parity retries by itself',
        });
      }
      const text = await response.text();
      let payload: { id?: number; message?: string; error_code?: number } = {};
      try {
        payload = text ? (JSON.parse(text) as typeof payload) : {};
      } catch {
        payload = { message: text };
      }
      if (response.ok && typeof payload.id === 'number') return payload.id;
      const refused = registrySecurityError(base, undefined, response.status, security);
      if (refused) throw refused;
      const reason = payload.message ?? `HTTP ${response.status}`;
      if (response.status === 409 || response.status === 422) {
        throw new ParityError('PARITY_SCHEMA_REJECTED', `the registry rejected the new schema for ${subject}: ${reason}`, {
          details: { subject, status: response.status, errorCode: payload.error_code },
          hint: `the table changed in a way ${subject}'s compatibility level forbids: revert the change, or have the subject's owner relax its level (PUT /config/${subject}); CDC stays paused without acknowledging and resumes by itself once the schema is accepted`,
        });
      }
      throw new ParityError('PARITY_CONNECTION', `schema registry error registering ${subject}: ${reason}`, {
        details: { subject, status: response.status },
        hint: 'the registry answered with an error; parity retries by itself',
      });
    },
  };
}
