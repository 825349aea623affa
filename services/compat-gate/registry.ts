import { checkCompatibility, parseSchema, type CompatibilityResult, type ParsedSchema, type SchemaType } from './checker.js';
import type { Finding } from './findings.js';
import type { JsonCompatibilityPolicy } from './json-schema-compat.js';
import { planFor, type CompatibilityLevel } from './levels.js';
import type { ProtoReferenceTexts } from './protobuf-schema.js';
import type { CcompatClient, RegistrySchemaType, RegistryVerdict, SchemaReference } from './registry-client.js';

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
  type: SchemaType;
  level: CompatibilityLevel;
  /** The candidate schema's text. */
  candidate: string;
  /**
   * The candidate's schema references (Protobuf imports). Default: those of the latest registered
   * version, so a candidate importing the same files resolves them to the same subject versions.
   */
  references?: readonly SchemaReference[];
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

/** The registry's name for each schema type. */
export const REGISTRY_TYPES: Record<SchemaType, RegistrySchemaType> = { avro: 'AVRO', json: 'JSON', protobuf: 'PROTOBUF' };

/**
 * The texts behind schema references, transitively (a referenced file may import others), by import
 * name, each with the subject version it came from: what a Protobuf schema's imports resolve to.
 */
export async function referenceTexts(client: CcompatClient, references: readonly SchemaReference[]): Promise<ProtoReferenceTexts> {
  const out = new Map<string, { text: string; reference: { subject: string; version: number } }>();
  const pending = [...references];
  while (pending.length > 0) {
    const ref = pending.shift() as SchemaReference;
    if (out.has(ref.name)) continue;
    const v = await client.version(ref.subject, ref.version);
    out.set(ref.name, { text: v.schema, reference: { subject: ref.subject, version: v.version } });
    pending.push(...v.references);
  }
  return out;
}

/** The subject's registered versions, oldest first; each keeps its version number and references. */
export async function registeredVersions(
  client: CcompatClient,
  subject: string,
): Promise<{ version: number; id: number; schemaType: RegistrySchemaType; text: string; references: SchemaReference[] }[]> {
  const numbers = await client.versions(subject);
  const out = [];
  for (const version of numbers) {
    const v = await client.version(subject, version);
    out.push({ version: v.version, id: v.id, schemaType: v.schemaType, text: v.schema, references: v.references });
  }
  return out;
}

/** Parses a registered version, resolving its references through the registry. */
export async function parseRegistered(
  client: CcompatClient,
  type: SchemaType,
  registered: { text: string; references: readonly SchemaReference[] },
): Promise<ParsedSchema> {
  const refs = registered.references.length > 0 ? await referenceTexts(client, registered.references) : undefined;
  return parseSchema(type, registered.text, refs);
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
  const candidateRefs = input.references ?? comparable[comparable.length - 1]?.references ?? [];
  const candidate: ParsedSchema = await parseRegistered(client, input.type, { text: input.candidate, references: candidateRefs });
  const previous = await Promise.all(comparable.map((r) => parseRegistered(client, input.type, r)));
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
    ...(await client.checkCompatibility(input.subject, input.candidate, schemaType, against, candidateRefs)),
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
  if (registry.refused) {
    findings.push({
      kind: 'registry-refused',
      subject: input.subject,
      message: `the registry could not evaluate the candidate for ${input.subject} (HTTP ${registry.refused.status}: ${registry.refused.message}); only the local verdict is known`,
      details: { registryUrl: client.url, ...registry.refused, local: local.messages },
    });
  } else if (registry.compatible !== local.compatible) {
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
