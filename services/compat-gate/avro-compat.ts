import type { Incompatibility } from './incompatibility.js';
import { avroTypeLabel, type AvroField, type AvroRecord, type AvroSchema } from './avro-schema.js';

/**
 * Avro reader/writer compatibility: can data written with `writer` be read with `reader` through Avro
 * schema resolution? These are the semantics Confluent Schema Registry and Apicurio both apply to Avro
 * (Avro's own `SchemaCompatibility` rules), re-implemented here so every incompatibility carries its
 * rule, a message and a JSON-pointer location into the reader schema:
 *
 * - same types: records match by unqualified name (or a reader alias) and every reader field must come
 *   from a writer field (by name or alias) or have a default; enums match by name and the reader must
 *   know every writer symbol unless it has an enum default; fixed types match by name and size;
 *   arrays and maps recurse; every branch of a writer union must be readable.
 * - different types: the promotions int->long->float->double and string<->bytes; a reader union reads a
 *   writer type if any branch does; a writer union is readable if every branch is.
 */

/** Avro's names for the ways resolution fails; they appear as `Incompatibility.rule`. */
export type AvroIncompatibilityType =
  | 'NAME_MISMATCH'
  | 'FIXED_SIZE_MISMATCH'
  | 'MISSING_ENUM_SYMBOLS'
  | 'READER_FIELD_MISSING_DEFAULT_VALUE'
  | 'TYPE_MISMATCH'
  | 'MISSING_UNION_BRANCH';

/** An incompatibility found below a (reader, writer) pair, located relative to that pair. */
interface Relative {
  rule: AvroIncompatibilityType;
  message: string;
  segments: string[];
  fields: string[];
}

const IN_PROGRESS = Symbol('in-progress');

function prefixed(found: Relative[], segment: string[], field?: string): Relative[] {
  if (found.length === 0) return found;
  return found.map((f) => ({ ...f, segments: [...segment, ...f.segments], fields: field === undefined ? f.fields : [field, ...f.fields] }));
}

function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

class ResolutionChecker {
  // Results per (reader, writer) identity pair. A pair met again while still being compared is a
  // recursive record: it is taken as compatible until proven otherwise, the way Avro breaks the cycle.
  private readonly memo = new Map<AvroSchema, Map<AvroSchema, Relative[] | typeof IN_PROGRESS>>();

  pair(reader: AvroSchema, writer: AvroSchema): Relative[] {
    let row = this.memo.get(reader);
    if (!row) {
      row = new Map();
      this.memo.set(reader, row);
    }
    const cached = row.get(writer);
    if (cached === IN_PROGRESS) return [];
    if (cached) return cached;
    row.set(writer, IN_PROGRESS);
    const result = this.calculate(reader, writer);
    row.set(writer, result);
    return result;
  }

  private calculate(reader: AvroSchema, writer: AvroSchema): Relative[] {
    if (reader.type === writer.type) {
      switch (reader.type) {
        case 'array':
          return prefixed(this.pair(reader.items, (writer as typeof reader).items), ['items']);
        case 'map':
          return prefixed(this.pair(reader.values, (writer as typeof reader).values), ['values']);
        case 'fixed': {
          const w = writer as typeof reader;
          const out = this.names(reader, w);
          if (reader.size !== w.size) {
            out.push({
              rule: 'FIXED_SIZE_MISMATCH',
              message: `expected: ${w.size}, found: ${reader.size}`,
              segments: ['size'],
              fields: [],
            });
          }
          return out;
        }
        case 'enum': {
          const w = writer as typeof reader;
          const out = this.names(reader, w);
          const missing = [...new Set(w.symbols)].filter((s) => !reader.symbols.includes(s)).sort();
          // A reader enum default absorbs symbols it does not know.
          if (missing.length > 0 && !(reader.default !== undefined && reader.symbols.includes(reader.default))) {
            out.push({ rule: 'MISSING_ENUM_SYMBOLS', message: `[${missing.join(', ')}]`, segments: ['symbols'], fields: [] });
          }
          return out;
        }
        case 'record':
          return [...this.names(reader, writer as AvroRecord), ...this.fields(reader, writer as AvroRecord)];
        case 'union': {
          const out: Relative[] = [];
          (writer as typeof reader).types.forEach((branch, i) => {
            if (this.pair(reader, branch).length > 0) {
              out.push({
                rule: 'MISSING_UNION_BRANCH',
                message: `reader union lacking writer type: ${avroTypeLabel(branch)}`,
                segments: [String(i)],
                fields: [],
              });
            }
          });
          return out;
        }
        default:
          return [];
      }
    }
    if (writer.type === 'union') {
      // Every value the writer can produce comes from one of its branches: each must be readable.
      return writer.types.flatMap((branch, i) => prefixed(this.pair(reader, branch), [String(i)]));
    }
    switch (reader.type) {
      case 'long':
        return writer.type === 'int' ? [] : [mismatch(reader, writer)];
      case 'float':
        return writer.type === 'int' || writer.type === 'long' ? [] : [mismatch(reader, writer)];
      case 'double':
        return writer.type === 'int' || writer.type === 'long' || writer.type === 'float' ? [] : [mismatch(reader, writer)];
      case 'bytes':
        return writer.type === 'string' ? [] : [mismatch(reader, writer)];
      case 'string':
        return writer.type === 'bytes' ? [] : [mismatch(reader, writer)];
      case 'union':
        // Resolution picks the first reader branch that can read the writer's type.
        for (const branch of reader.types) {
          if (this.pair(branch, writer).length === 0) return [];
        }
        return [
          { rule: 'MISSING_UNION_BRANCH', message: `reader union lacking writer type: ${avroTypeLabel(writer)}`, segments: [], fields: [] },
        ];
      default:
        return [mismatch(reader, writer)];
    }
  }

  private names(
    reader: AvroSchema & { name: string; aliases: string[] },
    writer: AvroSchema & { name: string; fullName: string },
  ): Relative[] {
    // Names are compared unqualified (a namespace move stays compatible); reader aliases are full names.
    if (reader.name === writer.name || reader.aliases.includes(writer.fullName)) return [];
    return [{ rule: 'NAME_MISMATCH', message: `expected: ${writer.fullName}`, segments: ['name'], fields: [] }];
  }

  private fields(reader: AvroRecord, writer: AvroRecord): Relative[] {
    const out: Relative[] = [];
    for (const readerField of reader.fields) {
      const writerField = lookupWriterField(writer, readerField);
      const at = ['fields', String(readerField.pos)];
      if (!writerField) {
        if (readerField.hasDefault) continue;
        if (readerField.type.type === 'enum' && readerField.type.default !== undefined) {
          // Avro lets an enum default stand in for a missing field's default: check the enum against the writer record.
          out.push(...prefixed(this.pair(readerField.type, writer), [...at, 'type'], readerField.name));
        } else {
          out.push({ rule: 'READER_FIELD_MISSING_DEFAULT_VALUE', message: readerField.name, segments: at, fields: [readerField.name] });
        }
        continue;
      }
      out.push(...prefixed(this.pair(readerField.type, writerField.type), [...at, 'type'], readerField.name));
    }
    return out;
  }
}

function mismatch(reader: AvroSchema, writer: AvroSchema): Relative {
  return {
    rule: 'TYPE_MISMATCH',
    message: `reader type: ${avroTypeLabel(reader)} not compatible with writer type: ${avroTypeLabel(writer)}`,
    segments: [],
    fields: [],
  };
}

/**
 * The writer field a reader field is filled from: same name, or one of the reader field's aliases.
 * Two matches is ambiguous; resolution cannot pick, so that is reported as a missing field would be.
 */
export function lookupWriterField(writer: AvroRecord, readerField: AvroField): AvroField | undefined {
  const matches: AvroField[] = [];
  const direct = writer.fields.find((f) => f.name === readerField.name);
  if (direct) matches.push(direct);
  for (const alias of readerField.aliases) {
    const aliased = writer.fields.find((f) => f.name === alias);
    if (aliased && aliased !== direct) matches.push(aliased);
  }
  return matches.length === 1 ? matches[0] : undefined;
}

/**
 * Every reason `reader` cannot read data written with `writer`, in Avro's order; empty when it can.
 * Locations are JSON pointers into the reader schema ("/" is the root).
 */
export function checkAvroReaderWriter(reader: AvroSchema, writer: AvroSchema): Incompatibility[] {
  return new ResolutionChecker().pair(reader, writer).map((r) => {
    const location = `/${r.segments.map(escapePointer).join('/')}`;
    return {
      rule: r.rule,
      message: describe(r, location),
      detail: r.message,
      location,
      ...(r.fields.length > 0 ? { fieldPath: r.fields.join('.') } : {}),
    };
  });
}

/** Turns Avro's terse messages ("expected: 8, found: 4", "[C]") into sentences that say what broke. */
function describe(r: Relative, location: string): string {
  switch (r.rule) {
    case 'READER_FIELD_MISSING_DEFAULT_VALUE':
      return `reader field "${r.message}" at ${location} is missing from the writer schema and has no default`;
    case 'MISSING_ENUM_SYMBOLS':
      return `reader enum at ${location} lacks writer symbols ${r.message} and has no enum default`;
    case 'FIXED_SIZE_MISMATCH':
      return `fixed size differs at ${location}: ${r.message}`;
    case 'NAME_MISMATCH':
      return `type name differs at ${location}: ${r.message} (and no reader alias matches)`;
    default:
      return `${r.message} at ${location}`;
  }
}
