import { ParityError } from '../core/errors.js';
import { checkAvroReaderWriter } from './avro-compat.js';
import { parseAvroSchema, type AvroSchema } from './avro-schema.js';
import type { Incompatibility } from './incompatibility.js';
import { checkJsonSchemaBackward, type JsonCompatibilityPolicy } from './json-schema-compat.js';
import { loadJsonSchema, type LoadedJsonSchema } from './json-schema-model.js';
import { planFor, versionsToCheck, type CompatibilityLevel, type Direction } from './levels.js';
import { checkProtobufReaderWriter } from './protobuf-diff.js';
import { parseProtobufSchema, type ProtobufSchema, type ProtoReferenceTexts } from './protobuf-schema.js';

/**
 * The local compatibility checker: Confluent Schema Registry's verdicts for a candidate schema against
 * previous versions under a compatibility level, with the rule and location of every incompatibility.
 * One entry point for every schema type; each type brings a parser and a pairwise check.
 */

/** Schema formats the registry knows. */
export const SCHEMA_TYPES = ['avro', 'json', 'protobuf'] as const;
export type SchemaType = (typeof SCHEMA_TYPES)[number];

export type ParsedSchema =
  | { type: 'avro'; schema: AvroSchema }
  | { type: 'json'; schema: LoadedJsonSchema }
  | { type: 'protobuf'; schema: ProtobufSchema };

export interface CheckOptions {
  /** JSON Schema only; Confluent's default is STRICT. */
  jsonPolicy?: JsonCompatibilityPolicy;
  /** Protobuf only: the files its imports name (import name -> text), besides the bundled well-known types. */
  protobufReferences?: ProtoReferenceTexts;
}

/** An incompatibility found against one previous version in one direction. */
export interface CompatibilityMessage extends Incompatibility {
  direction: Direction;
  /** The previous version it was found against: its label, or its 1-based position oldest first. */
  version: number | string;
}

/** The verdict: compatible exactly when there is no message. */
export interface CompatibilityResult {
  compatible: boolean;
  messages: CompatibilityMessage[];
}

/** Parses a `--type` value (avro, json, protobuf; jsonschema accepted); anything else is bad input. */
export function parseSchemaType(value: string): SchemaType {
  const lower = value.trim().toLowerCase();
  if (lower === 'jsonschema' || lower === 'json-schema') return 'json';
  if ((SCHEMA_TYPES as readonly string[]).includes(lower)) return lower as SchemaType;
  throw new ParityError('PARITY_BAD_INPUT', `unknown schema type "${value}"`, { hint: `use one of ${SCHEMA_TYPES.join(', ')}` });
}

// Parsed schemas are recognised by identity, never by shape: a schema document may itself have
// "type" and "schema" keys.
const parsedSchemas = new WeakSet<object>();

/**
 * Parses a schema of the given type. A string is the schema's text; any other value is its JSON
 * form (Protobuf takes text only; `references` resolves its imports). Bad input throws PARITY_BAD_INPUT.
 */
export function parseSchema(type: SchemaType, input: string | unknown, references?: ProtoReferenceTexts): ParsedSchema {
  let parsed: ParsedSchema;
  switch (type) {
    case 'avro':
      parsed = { type, schema: parseAvroSchema(input) };
      break;
    case 'json':
      parsed = { type, schema: loadJsonSchema(input) };
      break;
    case 'protobuf':
      if (typeof input !== 'string')
        throw new ParityError('PARITY_BAD_INPUT', 'a Protobuf schema must be .proto text', { hint: 'pass the .proto file itself' });
      parsed = { type, schema: parseProtobufSchema(input, references) };
      break;
  }
  parsedSchemas.add(parsed);
  return parsed;
}

/**
 * Why a consumer reading with `reader` cannot read data written with `writer`; empty when it can.
 * For JSON Schema this is Confluent's backward check with reader = new and writer = previous.
 */
export function readerWriterIncompatibilities(reader: ParsedSchema, writer: ParsedSchema, options: CheckOptions = {}): Incompatibility[] {
  if (reader.type !== writer.type) {
    return [{ rule: 'SCHEMA_TYPE_CHANGED', message: `schema type changed from ${writer.type} to ${reader.type}`, location: '/' }];
  }
  if (reader.type === 'avro' && writer.type === 'avro') return checkAvroReaderWriter(reader.schema, writer.schema);
  if (reader.type === 'json' && writer.type === 'json')
    return checkJsonSchemaBackward(reader.schema, writer.schema, options.jsonPolicy ?? 'STRICT');
  if (reader.type === 'protobuf' && writer.type === 'protobuf') return checkProtobufReaderWriter(reader.schema, writer.schema);
  return [];
}

/** A candidate, its predecessors and the level to judge it under. */
export interface CompatibilityInput {
  type: SchemaType;
  level: CompatibilityLevel;
  /** The candidate (new) schema. */
  schema: string | unknown | ParsedSchema;
  /** Registered versions, oldest first. */
  previous: readonly (string | unknown | ParsedSchema)[];
  /** Labels for `previous` (e.g. registry version numbers); default: 1-based positions. */
  versionLabels?: readonly (number | string)[];
  options?: CheckOptions;
}

function isParsed(value: unknown): value is ParsedSchema {
  return typeof value === 'object' && value !== null && parsedSchemas.has(value);
}

/**
 * Checks a candidate against previous versions under a level, with Confluent's semantics: BACKWARD
 * = candidate reads previous; FORWARD = previous reads candidate; FULL = both; the transitive levels
 * check every previous version, the others the latest only; NONE checks nothing.
 */
export function checkCompatibility(input: CompatibilityInput): CompatibilityResult {
  const refs = input.options?.protobufReferences;
  const candidate = isParsed(input.schema) ? input.schema : parseSchema(input.type, input.schema, refs);
  // Every version is parsed, even those the level does not compare, so a broken file is reported.
  const previous = input.previous.map((p) => (isParsed(p) ? p : parseSchema(input.type, p, refs)));
  const plan = planFor(input.level);
  const messages: CompatibilityMessage[] = [];
  for (const { index, value } of versionsToCheck(input.level, previous)) {
    const version = input.versionLabels?.[index] ?? index + 1;
    for (const direction of plan.directions) {
      const found =
        direction === 'backward'
          ? readerWriterIncompatibilities(candidate, value, input.options)
          : readerWriterIncompatibilities(value, candidate, input.options);
      for (const inc of found) messages.push({ ...inc, direction, version });
    }
  }
  return { compatible: messages.length === 0, messages };
}
