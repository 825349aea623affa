import { checkCompatibility, parseSchema, type CompatibilityResult, type ParsedSchema } from './checker.js';
import type { Finding } from './findings.js';
import type { JsonCompatibilityPolicy } from './json-schema-compat.js';
import { planFor, type CompatibilityLevel } from './levels.js';
import type { CcompatClient, RegistrySchemaType, RegistryVerdict } from './registry-client.js';

/**
 * A candidate schema checked against a subject's registered versions twice: by the registry itself
 * and by the local checker with Confluent's semantics. Agreement is the expected case; a disagreement
 * is a finding of its own, because one of the two is about to mislead someone (a registration that
 * will be rejected, or an accepted change that breaks consumers).
 *
 * The registry is asked through the endpoint that matches what registration will enforce:
 * `POST /compatibility/subjects/{s}/versions` (every version) for the transitive levels and
 * `.../versions/latest` for the others. Apicurio's ccompat API checks the first against every version
 * whatever the level, so for BACKWARD/FORWARD/FULL it rejects candidates that registration accepts.
 */

export interface SubjectCheckInput {
  subject: string;
  type: 'avro' | 'json';
  level: CompatibilityLevel;
  /** The candidate schema's text. */
  candidate: string;
  jsonPolicy?: JsonCompatibilityPolicy;
  /**
   * Set the subject's level on the registry before checking (default true). The registry's verdict
   * is only comparable when it applies the same level; never trust an inherited or defaulted one.
   */
  setLevel?: boolean;
}

/** Both verdicts for one subject and the findings they produce. */
export interface SubjectCheck {
  subject: string;
  level: CompatibilityLevel;
  /** Registered version numbers, oldest first. */
  versions: number[];
  registry: RegistryVerdict & { endpoint: 'versions' | 'versions/latest' };
  local: CompatibilityResult;
  /** Both verdicts are "compatible". */
  compatible: boolean;
  findings: Finding[];
}

const REGISTRY_TYPES: Record<'avro' | 'json', RegistrySchemaType> = { avro: 'AVRO', json: 'JSON' };

/** The subject's registered versions, oldest first, parsed; each keeps its version number. */
export async function registeredVersions(client: CcompatClient, subject: string): Promise<{ version: number; id: number; schemaType: RegistrySchemaType; text: string }[]> {
  const numbers = await client.versions(subject);
  const out = [];
  for (const version of numbers) {
    const v = await client.version(subject, version);
    out.push({ version: v.version, id: v.id, schemaType: v.schemaType, text: v.schema });
  }
  return out;
}

/** Runs both checks for one subject and reports incompatibilities and disagreements as findings. */
export async function checkSubject(client: CcompatClient, input: SubjectCheckInput): Promise<SubjectCheck> {
  const findings: Finding[] = [];
  if (input.setLevel ?? true) await client.setLevel(input.subject, input.level);
  const registered = await registeredVersions(client, input.subject);
  const schemaType = REGISTRY_TYPES[input.type];

  const foreign = registered.filter((r) => r.schemaType !== schemaType);
  for (const r of foreign) {
    findings.push({
      kind: 'schema-type-mismatch',
      subject: input.subject,
      message: `${input.subject} version ${r.version} is ${r.schemaType}, but the spec declares ${schemaType}; a subject keeps one schema type`,
      details: { version: r.version, registered: r.schemaType, declared: schemaType },
    });
  }
  const comparable = registered.filter((r) => r.schemaType === schemaType);
  const candidate: ParsedSchema = parseSchema(input.type, input.candidate);
  const previous = comparable.map((r) => parseSchema(input.type, r.text));
  const local = checkCompatibility({
    type: input.type,
    level: input.level,
    schema: candidate,
    previous,
    versionLabels: comparable.map((r) => r.version),
    options: input.jsonPolicy ? { jsonPolicy: input.jsonPolicy } : {},
  });
  const against = planFor(input.level).transitive ? 'all' : 'latest';
  const registry = {
    ...(await client.checkCompatibility(input.subject, input.candidate, schemaType, against)),
    endpoint: against === 'all' ? ('versions' as const) : ('versions/latest' as const),
  };

  if (!local.compatible) {
    findings.push({
      kind: 'incompatible',
      subject: input.subject,
      message: `the candidate for ${input.subject} is not ${input.level} compatible: ${local.messages.length} incompatibilit${local.messages.length === 1 ? 'y' : 'ies'}, first: ${local.messages[0]?.message ?? ''}`,
      details: { level: input.level, messages: local.messages },
    });
  }
  if (registry.compatible !== local.compatible) {
    findings.push({
      kind: 'registry-disagreement',
      subject: input.subject,
      message: `the registry says ${registry.compatible ? 'compatible' : 'incompatible'} for ${input.subject} under ${input.level}, the local checker (Confluent semantics) says ${local.compatible ? 'compatible' : 'incompatible'}`,
      details: { registry, local: local.messages, registryUrl: client.url },
    });
  }
  return {
    subject: input.subject,
    level: input.level,
    versions: comparable.map((r) => r.version),
    registry,
    local,
    compatible: local.compatible && registry.compatible && foreign.length === 0,
    findings,
  };
}
