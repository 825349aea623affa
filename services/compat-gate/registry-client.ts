import { resolveRegistrySecurity, type RegistrySpec } from '../core/connection-security.js';
import { registryFetch, registrySecurityError } from '../core/registry-http.js';
import { ParityError } from '../core/errors.js';
import type { CompatibilityLevel } from './levels.js';

/**
 * The Confluent-compatible schema registry REST API (Confluent Schema Registry, or Apicurio's
 * `/apis/ccompat/v7`), only the calls the compatibility gate needs. Plain REST rather than the npm
 * client because the client's `register()` silently sets the subject's level to BACKWARD, and the
 * gate must set and read levels explicitly.
 */

/** Registry schema types as the REST API spells them; absent means AVRO. */
export type RegistrySchemaType = 'AVRO' | 'JSON' | 'PROTOBUF';

/** A schema reference: the import `name` resolves to `subject` at `version` (Protobuf imports, JSON `$ref`s). */
export interface SchemaReference {
  name: string;
  subject: string;
  version: number;
}

export interface RegisteredSchema {
  subject: string;
  version: number;
  id: number;
  schema: string;
  schemaType: RegistrySchemaType;
  references: SchemaReference[];
}

export interface RegistryVerdict {
  compatible: boolean;
  /** Present when the registry explains itself (Confluent with verbose=true; Apicurio does not). */
  messages: string[];
  /** Set when the registry refused to evaluate the candidate (HTTP 422); `compatible` is then false. */
  refused?: { status: number; message: string };
}

export interface RegisterOutcome {
  /** The new schema id, when accepted. */
  id?: number;
  /** HTTP status: 200 accepted, 409 incompatible, 422 invalid. */
  status: number;
  /** The registry's error message when rejected. */
  message?: string;
}

export interface CcompatClient {
  readonly url: string;
  setLevel(subject: string, level: CompatibilityLevel): Promise<void>;
  /** The subject's own level, or undefined when it only inherits the global one. */
  getLevel(subject: string): Promise<CompatibilityLevel | undefined>;
  /** Registered version numbers, oldest first; empty for an unknown subject. */
  versions(subject: string): Promise<number[]>;
  version(subject: string, version: number): Promise<RegisteredSchema>;
  /** Checks a candidate against the subject's registered versions under its level. */
  checkCompatibility(
    subject: string,
    schema: string,
    schemaType: RegistrySchemaType,
    against?: 'all' | 'latest',
    references?: readonly SchemaReference[],
  ): Promise<RegistryVerdict>;
  register(
    subject: string,
    schema: string,
    schemaType: RegistrySchemaType,
    references?: readonly SchemaReference[],
  ): Promise<RegisterOutcome>;
  /** The schema with this id, or undefined when the registry does not know it. */
  schemaById(id: number): Promise<{ schema: string; schemaType: RegistrySchemaType; references: SchemaReference[] } | undefined>;
  /** The (subject, version) pairs an id is registered under. */
  subjectVersionsById(id: number): Promise<{ subject: string; version: number }[]>;
}

interface Response {
  status: number;
  body: unknown;
}

function referencesOf(value: unknown): SchemaReference[] {
  return Array.isArray(value) ? (value as SchemaReference[]).map((r) => ({ name: r.name, subject: r.subject, version: r.version })) : [];
}

function schemaTypeOf(value: unknown): RegistrySchemaType {
  return value === 'JSON' || value === 'PROTOBUF' ? value : 'AVRO';
}

/**
 * A client for a ccompat base URL such as http://127.0.0.1:18081/apis/ccompat/v7.
 * Network failures are PARITY_CONNECTION (retriable); unexpected statuses are PARITY_SCHEMA_REJECTED.
 */
export function createCcompatClient(registry: string | RegistrySpec, fetchOverride?: typeof fetch): CcompatClient {
  const spec = typeof registry === 'string' ? { url: registry } : registry;
  const security = resolveRegistrySecurity(spec);
  const fetchImpl = fetchOverride ?? registryFetch(spec, security);
  const base = spec.url.replace(/\/+$/, '');
  const subjectPath = (subject: string): string => `/subjects/${encodeURIComponent(subject)}`;

  async function call(method: string, path: string, body?: unknown): Promise<Response> {
    let res: globalThis.Response;
    try {
      res = await fetchImpl(`${base}${path}`, {
        method,
        headers: {
          accept: 'application/vnd.schemaregistry.v1+json, application/json',
          'content-type': 'application/vnd.schemaregistry.v1+json',
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (err) {
      const refused = registrySecurityError(base, err);
      if (refused) throw refused;
      throw new ParityError(
        'PARITY_CONNECTION',
        `schema registry ${base} unreachable: ${err instanceof Error ? err.message : String(err)}`,
        {
          cause: err,
          hint: 'is the registry running? `parity stack status` shows the local one',
        },
      );
    }
    const refused = registrySecurityError(base, undefined, res.status, security);
    if (refused) throw refused;
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      // Keep the raw text: an HTML error page is still worth showing.
    }
    return { status: res.status, body: parsed };
  }

  function fail(what: string, r: Response): never {
    const message = (r.body as { message?: string } | null)?.message ?? JSON.stringify(r.body);
    throw new ParityError('PARITY_SCHEMA_REJECTED', `schema registry: ${what} failed with HTTP ${r.status}: ${message}`, {
      details: { status: r.status },
    });
  }

  return {
    url: base,
    async setLevel(subject, level) {
      const r = await call('PUT', `/config/${encodeURIComponent(subject)}`, { compatibility: level });
      if (r.status !== 200) fail(`setting ${subject} to ${level}`, r);
    },
    async getLevel(subject) {
      const r = await call('GET', `/config/${encodeURIComponent(subject)}`);
      if (r.status === 404) return undefined;
      if (r.status !== 200) fail(`reading the level of ${subject}`, r);
      const body = r.body as { compatibilityLevel?: CompatibilityLevel; compatibility?: CompatibilityLevel };
      return body.compatibilityLevel ?? body.compatibility;
    },
    async versions(subject) {
      const r = await call('GET', `${subjectPath(subject)}/versions`);
      if (r.status === 404) return [];
      if (r.status !== 200) fail(`listing versions of ${subject}`, r);
      return [...(r.body as number[])].sort((a, b) => a - b);
    },
    async version(subject, version) {
      const r = await call('GET', `${subjectPath(subject)}/versions/${version}`);
      if (r.status !== 200) fail(`reading ${subject} version ${version}`, r);
      const body = r.body as { id: number; version: number; schema: string; schemaType?: string; references?: unknown };
      return {
        subject,
        version: body.version,
        id: body.id,
        schema: body.schema,
        schemaType: schemaTypeOf(body.schemaType),
        references: referencesOf(body.references),
      };
    },
    async checkCompatibility(subject, schema, schemaType, against = 'all', references = []) {
      const path = `/compatibility${subjectPath(subject)}/versions${against === 'latest' ? '/latest' : ''}?verbose=true`;
      const r = await call('POST', path, { schema, schemaType, ...(references.length ? { references } : {}) });
      // Nothing registered yet: there is nothing to be incompatible with.
      if (r.status === 404) return { compatible: true, messages: [] };
      if (r.status === 422) {
        const message = (r.body as { message?: string } | null)?.message ?? String(r.body);
        return { compatible: false, messages: [message], refused: { status: 422, message } };
      }
      if (r.status !== 200) fail(`checking a schema for ${subject}`, r);
      const body = r.body as { is_compatible: boolean; messages?: string[] };
      return { compatible: body.is_compatible, messages: body.messages ?? [] };
    },
    async register(subject, schema, schemaType, references = []) {
      const r = await call('POST', `${subjectPath(subject)}/versions`, {
        schema,
        schemaType,
        ...(references.length ? { references } : {}),
      });
      if (r.status === 200) return { status: 200, id: (r.body as { id: number }).id };
      if (r.status === 409 || r.status === 422)
        return { status: r.status, message: (r.body as { message?: string } | null)?.message ?? String(r.body) };
      return fail(`registering a schema for ${subject}`, r);
    },
    async schemaById(id) {
      const r = await call('GET', `/schemas/ids/${id}`);
      if (r.status === 404) return undefined;
      if (r.status !== 200) fail(`reading schema id ${id}`, r);
      const body = r.body as { schema: string; schemaType?: string; references?: unknown };
      return { schema: body.schema, schemaType: schemaTypeOf(body.schemaType), references: referencesOf(body.references) };
    },
    async subjectVersionsById(id) {
      const r = await call('GET', `/schemas/ids/${id}/versions`);
      if (r.status === 404) return [];
      if (r.status !== 200) fail(`reading the versions of schema id ${id}`, r);
      return r.body as { subject: string; version: number }[];
    },
  };
}
