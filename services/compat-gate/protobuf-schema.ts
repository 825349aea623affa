import protobuf from 'protobufjs';
import { ParityError } from '../core/errors.js';

/**
 * A `.proto` file as the compatibility rules see it: package, syntax, and its messages and enums in
 * declaration order, with every field's number, declared type, label and oneof membership. Parsed by
 * protobufjs (`parse()`, then its JSON descriptor form); nothing here tokenizes `.proto` text by hand.
 *
 * Imports resolve to other files: those given as references (the registry's subject references, or
 * `--reference` files on the command line), else the well-known types protobufjs bundles
 * (google/protobuf/timestamp.proto, any, duration, empty, struct, wrappers, field_mask).
 */

/**
 * A field's label as Confluent's parser (Square Wire) records it: `null` for a proto3 field without a
 * label and for map fields, `oneof` for a member of a oneof, else the written label (proto2's
 * unlabelled-is-an-error rule means proto2 fields always have one).
 */
export type ProtoLabel = 'optional' | 'required' | 'repeated' | 'oneof' | null;

export interface ProtoField {
  name: string;
  number: number;
  /** The type as written (`int32`, `Status`, `.foo.Bar`); for a map field the value type. */
  type: string;
  /** Map fields only: the key type. */
  keyType?: string;
  label: ProtoLabel;
}

export interface ProtoOneof {
  name: string;
  fields: ProtoField[];
}

export interface ProtoMessage {
  kind: 'message';
  name: string;
  /** Fields outside any (real) oneof, in declaration order; proto3 `optional` fields are here. */
  fields: ProtoField[];
  oneofs: ProtoOneof[];
  nested: ProtoType[];
  /** `reserved` numbers as [from, to] ranges and reserved names (Apicurio's rules read them; Confluent's do not). */
  reservedRanges: [number, number][];
  reservedNames: string[];
}

export interface ProtoEnum {
  kind: 'enum';
  name: string;
  /** Constants by number; with `allow_alias` the last name declared for a number wins. */
  values: Map<number, string>;
}

export type ProtoType = ProtoMessage | ProtoEnum;

export interface ProtoFile {
  /** `proto2`, `proto3`, or an edition such as `2023`. */
  syntax: string;
  /** Empty when the file declares no package. */
  package: string;
  imports: string[];
  /** Top-level messages and enums in declaration order (services are not schema). */
  types: ProtoType[];
}

/** Where a dependency came from: a registry subject version, or nothing (a bundled or local file). */
export interface ProtoReference {
  subject: string;
  version: number;
}

export interface ProtoDependency {
  name: string;
  file: ProtoFile;
  reference?: ProtoReference;
}

/** A parsed schema and every file it imports, transitively. */
export interface ProtobufSchema {
  text: string;
  file: ProtoFile;
  /** Import name (e.g. `google/protobuf/timestamp.proto`) -> its parsed file. */
  dependencies: Map<string, ProtoDependency>;
}

/** An import's text (and its registry reference, if it has one), by import name. */
export type ProtoReferenceTexts = ReadonlyMap<string, { text: string; reference?: ProtoReference }>;

type Json = Record<string, unknown>;

function syntaxOf(text: string): string {
  // The syntax/edition statement must be the first statement of a file; protobufjs' tokenizer skips comments.
  const tn = protobuf.tokenize(text, false);
  const first = tn.next();
  if (first !== 'syntax' && first !== 'edition') return 'proto2';
  tn.next(); // =
  tn.next(); // opening quote
  return tn.next() ?? 'proto2';
}

function labelOf(field: Json, syntax: string, inOneof: boolean): ProtoLabel {
  if (inOneof) return 'oneof';
  if (field.keyType !== undefined) return null;
  if (field.rule === 'repeated' || field.rule === 'required') return field.rule;
  const options = field.options as Json | undefined;
  if (options?.proto3_optional === true) return 'optional';
  return syntax === 'proto2' ? 'optional' : null;
}

function toMessage(name: string, json: Json, syntax: string): ProtoMessage {
  const fieldsJson = (json.fields ?? {}) as Record<string, Json>;
  const oneofsJson = (json.oneofs ?? {}) as Record<string, { oneof: string[] }>;
  // protobufjs models a proto3 `optional` field as a synthetic oneof `_name`; Confluent's parser does not.
  const real = Object.entries(oneofsJson).filter(
    ([, o]) => !o.oneof.every((f) => (fieldsJson[f]?.options as Json | undefined)?.proto3_optional === true),
  );
  const member = new Map<string, string>();
  for (const [oneofName, o] of real) for (const f of o.oneof) member.set(f, oneofName);
  const field = (fieldName: string, f: Json): ProtoField => ({
    name: fieldName,
    number: f.id as number,
    type: f.type as string,
    ...(f.keyType !== undefined ? { keyType: f.keyType as string } : {}),
    label: labelOf(f, syntax, member.has(fieldName)),
  });
  const fields: ProtoField[] = [];
  for (const [fieldName, f] of Object.entries(fieldsJson)) {
    if (f.extend !== undefined || member.has(fieldName)) continue;
    fields.push(field(fieldName, f));
  }
  const oneofs = real.map(([oneofName, o]) => ({
    name: oneofName,
    fields: o.oneof.filter((f) => fieldsJson[f]).map((f) => field(f, fieldsJson[f] as Json)),
  }));
  const reserved = (json.reserved ?? []) as (string | [number, number])[];
  return {
    kind: 'message',
    name,
    fields,
    oneofs,
    nested: typesOf(json.nested as Record<string, Json> | undefined, syntax),
    reservedRanges: reserved.filter((r): r is [number, number] => Array.isArray(r)),
    reservedNames: reserved.filter((r): r is string => typeof r === 'string'),
  };
}

function typesOf(nested: Record<string, Json> | undefined, syntax: string): ProtoType[] {
  const out: ProtoType[] = [];
  for (const [name, json] of Object.entries(nested ?? {})) {
    if (json.values !== undefined) {
      const values = new Map<number, string>();
      for (const [constant, number] of Object.entries(json.values as Record<string, number>)) values.set(number, constant);
      out.push({ kind: 'enum', name, values });
    } else if (json.fields !== undefined) {
      out.push(toMessage(name, json, syntax));
    }
    // Services and extension-only namespaces carry no data schema.
  }
  return out;
}

function fileFromJson(rootJson: Json, pkg: string, syntax: string, imports: string[]): ProtoFile {
  let ns: Json | undefined = rootJson;
  for (const part of pkg ? pkg.split('.') : []) ns = (ns?.nested as Record<string, Json> | undefined)?.[part];
  return { syntax, package: pkg, imports, types: typesOf(ns?.nested as Record<string, Json> | undefined, syntax) };
}

/** Parses one `.proto` file's text (not its imports). Bad syntax is PARITY_BAD_INPUT naming the line. */
export function parseProtoFile(text: string, name = 'schema'): ProtoFile {
  let parsed: protobuf.IParserResult;
  try {
    parsed = protobuf.parse(text, { keepCase: true });
  } catch (err) {
    throw new ParityError('PARITY_BAD_INPUT', `${name} is not a valid .proto file: ${err instanceof Error ? err.message : String(err)}`, {
      hint: 'check the .proto syntax (proto2 fields need a label: optional, required or repeated)',
      cause: err,
    });
  }
  const imports = [...(parsed.imports ?? []), ...(parsed.weakImports ?? [])];
  return fileFromJson(parsed.root.toJSON() as Json, parsed.package ?? '', syntaxOf(text), imports);
}

/** The well-known files protobufjs bundles, as parsed files. */
function bundledFile(name: string): ProtoFile | undefined {
  const json = protobuf.common.get(name) as Json | null;
  if (!json) return undefined;
  return fileFromJson(json, 'google.protobuf', 'proto3', []);
}

/**
 * Parses a schema and resolves its imports, transitively: from `references` first, then the bundled
 * well-known types. An import found in neither is PARITY_BAD_INPUT (Confluent and Apicurio refuse it too).
 */
export function parseProtobufSchema(text: string, references: ProtoReferenceTexts = new Map()): ProtobufSchema {
  const file = parseProtoFile(text);
  const dependencies = new Map<string, ProtoDependency>();
  const pending = [...file.imports];
  while (pending.length > 0) {
    const name = pending.shift() as string;
    if (dependencies.has(name)) continue;
    const given = references.get(name);
    let dep: ProtoDependency;
    if (given) {
      dep = { name, file: parseProtoFile(given.text, name), ...(given.reference ? { reference: given.reference } : {}) };
    } else {
      const bundled = bundledFile(name);
      if (!bundled) {
        throw new ParityError('PARITY_BAD_INPUT', `import "${name}" is neither a given reference nor a bundled well-known type`, {
          hint: `pass its file with --reference ${name}=FILE (on the registry: register it as its own subject and list it in "references")`,
        });
      }
      dep = { name, file: bundled };
    }
    dependencies.set(name, dep);
    pending.push(...dep.file.imports);
  }
  return { text, file, dependencies };
}

/** The scalar types of the .proto language. */
export const PROTO_SCALARS: ReadonlySet<string> = new Set([
  'double',
  'float',
  'int32',
  'int64',
  'uint32',
  'uint64',
  'sint32',
  'sint64',
  'fixed32',
  'fixed64',
  'sfixed32',
  'sfixed64',
  'bool',
  'string',
  'bytes',
]);
