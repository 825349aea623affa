import type { ParsedSchema } from './checker.js';
import type { Finding } from './findings.js';
import type { JsonSchemaNode } from './json-schema-model.js';
import type { AvroSchema } from './avro-schema.js';
import type { ProtoType } from './protobuf-schema.js';

/**
 * The semantic-changes rule. A field whose meaning changes (an amount that becomes post-tax, cents
 * instead of units) is invisible to every compatibility check: the schema does not change, consumers
 * keep decoding, and silently compute wrong numbers. The migration playbook therefore requires the new
 * meaning to arrive in a way a consumer cannot miss: under a new field name, on a new subject/topic
 * version, or flagged by an explicit marker field. This module checks that the declared way is there.
 */

/** A declared change of meaning, as the migration spec's `events.semanticChanges` lists it. */
export interface SemanticChange {
  field: string;
  description: string;
  via: 'new-field' | 'new-subject' | 'marker-field';
  newField?: string;
  newSubject?: string;
  markerField?: string;
}

/** What is known about one subject: its candidate schema (if any) and its registered versions. */
export interface SubjectSchemas {
  subject: string;
  candidate?: ParsedSchema;
  /** Registered versions, oldest first. */
  registered: ParsedSchema[];
}

/** Every field or property name anywhere in a schema (events nest columns inside before/after). */
export function fieldNames(schema: ParsedSchema): Set<string> {
  const names = new Set<string>();
  if (schema.type === 'avro') collectAvro(schema.schema, names, new Set());
  else if (schema.type === 'json') collectJson(schema.schema.root, names, new Set());
  else collectProtobuf(schema.schema.file.types, names);
  return names;
}

/** Protobuf: field names of every message, nested ones included (a field's type is declared elsewhere in the file). */
function collectProtobuf(types: ProtoType[], names: Set<string>): void {
  for (const t of types) {
    if (t.kind !== 'message') continue;
    for (const f of [...t.fields, ...t.oneofs.flatMap((o) => o.fields)]) names.add(f.name);
    collectProtobuf(t.nested, names);
  }
}

function collectAvro(schema: AvroSchema, names: Set<string>, seen: Set<AvroSchema>): void {
  if (seen.has(schema)) return;
  seen.add(schema);
  switch (schema.type) {
    case 'record':
      for (const f of schema.fields) {
        names.add(f.name);
        collectAvro(f.type, names, seen);
      }
      break;
    case 'array':
      collectAvro(schema.items, names, seen);
      break;
    case 'map':
      collectAvro(schema.values, names, seen);
      break;
    case 'union':
      for (const t of schema.types) collectAvro(t, names, seen);
      break;
    default:
      break;
  }
}

function collectJson(node: JsonSchemaNode, names: Set<string>, seen: Set<JsonSchemaNode>): void {
  if (seen.has(node)) return;
  seen.add(node);
  switch (node.kind) {
    case 'ref':
      collectJson(node.target(), names, seen);
      break;
    case 'object':
      for (const [name, child] of node.properties) {
        names.add(name);
        collectJson(child, names, seen);
      }
      if (node.additionalPropertiesSchema) collectJson(node.additionalPropertiesSchema, names, seen);
      break;
    case 'array':
      if (node.allItems) collectJson(node.allItems, names, seen);
      for (const item of node.itemSchemas ?? []) collectJson(item, names, seen);
      break;
    case 'combined':
      for (const sub of node.subschemas) collectJson(sub, names, seen);
      break;
    case 'conditional':
      for (const sub of [node.if, node.then, node.else]) if (sub) collectJson(sub, names, seen);
      break;
    default:
      break;
  }
}

/** The schema consumers are about to get: the candidate, else the latest registered version. */
function upcoming(s: SubjectSchemas): ParsedSchema | undefined {
  return s.candidate ?? s.registered[s.registered.length - 1];
}

/**
 * Checks every declared semantic change against the subjects' schemas. Returns one finding per
 * violation; none means every change of meaning arrives the way its declaration says.
 */
export function checkSemanticChanges(changes: readonly SemanticChange[], subjects: readonly SubjectSchemas[]): Finding[] {
  const findings: Finding[] = [];
  for (const change of changes) {
    const fail = (message: string, subject?: string): void => {
      findings.push({ kind: 'semantic-change', ...(subject ? { subject } : {}), message, details: { ...change } });
    };
    const carrying = subjects.filter((s) =>
      [...s.registered, ...(s.candidate ? [s.candidate] : [])].some((schema) => fieldNames(schema).has(change.field)),
    );
    if (carrying.length === 0) {
      fail(
        `semantic change of "${change.field}" (${change.description}): no event schema of the spec's subjects has a field "${change.field}"; check the field name or add the subject that carries it`,
      );
      continue;
    }
    switch (change.via) {
      case 'new-field': {
        if (!change.newField || change.newField === change.field) {
          fail(
            `semantic change of "${change.field}" is declared via new-field but names no different newField; write newField: <the new name>`,
          );
          break;
        }
        for (const s of carrying) {
          const next = upcoming(s);
          if (next && !fieldNames(next).has(change.newField)) {
            fail(
              `${s.subject}: "${change.field}" changes meaning (${change.description}) but the ${s.candidate ? 'candidate' : 'latest'} schema has no field "${change.newField}"; add it and keep "${change.field}" with its old meaning`,
              s.subject,
            );
          }
        }
        break;
      }
      case 'new-subject': {
        const target = change.newSubject;
        if (!target) {
          fail(
            `semantic change of "${change.field}" is declared via new-subject but names no newSubject; write newSubject: <topic.v2>-value`,
          );
          break;
        }
        if (!subjects.some((s) => s.subject === target)) {
          fail(
            `semantic change of "${change.field}" moves to subject ${target}, which the spec's events.subjects does not list; add it so its schema and consumers are checked`,
          );
          break;
        }
        // The old subjects must keep the old meaning: if the new subject is also where the field lived
        // before, nothing tells consumers apart.
        const oldCarriers = carrying.filter((s) => s.subject !== target);
        if (oldCarriers.length === 0) {
          fail(
            `semantic change of "${change.field}" is declared via new-subject ${target}, but ${target} is the only subject carrying it: the old meaning has no subject of its own`,
            target,
          );
        }
        break;
      }
      case 'marker-field': {
        if (!change.markerField) {
          fail(
            `semantic change of "${change.field}" is declared via marker-field but names no markerField; write markerField: <field that flags the new meaning>`,
          );
          break;
        }
        for (const s of carrying) {
          const next = upcoming(s);
          if (next && !fieldNames(next).has(change.markerField)) {
            fail(
              `${s.subject}: "${change.field}" changes meaning (${change.description}) but the ${s.candidate ? 'candidate' : 'latest'} schema has no marker field "${change.markerField}"`,
              s.subject,
            );
          }
        }
        break;
      }
    }
  }
  return findings;
}
