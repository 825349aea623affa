import type { Incompatibility } from './incompatibility.js';
import {
  PROTO_SCALARS,
  type ProtobufSchema,
  type ProtoEnum,
  type ProtoField,
  type ProtoFile,
  type ProtoLabel,
  type ProtoMessage,
  type ProtoReference,
  type ProtoType,
} from './protobuf-schema.js';

/**
 * The differences between two Protobuf schemas, with Confluent Schema Registry's difference types and
 * its verdict on each (its protobuf-provider `diff` package). The rules come from the wire format: a
 * field is its number, not its name; scalars are compatible within the groups that share a wire
 * encoding; messages are found by their message indexes, so moving or reordering them is harmless.
 *
 * Paths are Confluent's: `#/<Message>/<Nested>/<field number>` (`#/Msg/<oneof>/<number>` inside a oneof).
 */

/** Confluent's Protobuf difference types (`Difference.Type`). */
export const PROTOBUF_DIFFERENCE_TYPES = [
  'PACKAGE_CHANGED',
  'MESSAGE_ADDED',
  'MESSAGE_REMOVED',
  'MESSAGE_MOVED',
  'ENUM_ADDED',
  'ENUM_REMOVED',
  'ENUM_CONST_ADDED',
  'ENUM_CONST_CHANGED',
  'ENUM_CONST_REMOVED',
  'FIELD_ADDED',
  'FIELD_REMOVED',
  'FIELD_NAME_CHANGED',
  'FIELD_KIND_CHANGED',
  'FIELD_SCALAR_KIND_CHANGED',
  'FIELD_NAMED_TYPE_CHANGED',
  'FIELD_NUMERIC_LABEL_CHANGED',
  'FIELD_STRING_OR_BYTES_LABEL_CHANGED',
  'REQUIRED_FIELD_ADDED',
  'REQUIRED_FIELD_REMOVED',
  'ONEOF_ADDED',
  'ONEOF_REMOVED',
  'ONEOF_FIELD_ADDED',
  'ONEOF_FIELD_REMOVED',
  'ONEOF_FIELD_MOVED_TO_TOP_LEVEL',
  'MULTIPLE_FIELDS_MOVED_TO_ONEOF',
  'FIELD_MOVED_TO_EXISTING_ONEOF',
] as const;
export type ProtobufDifferenceType = (typeof PROTOBUF_DIFFERENCE_TYPES)[number];

/**
 * The changes Confluent accepts (`SchemaDiff.COMPATIBLE_CHANGES` on its main line). Every other
 * difference makes the update unable to read data written with the original. PACKAGE_CHANGED is not
 * on the list there (some release branches have carried it).
 */
export const PROTOBUF_COMPATIBLE_CHANGES: ReadonlySet<ProtobufDifferenceType> = new Set<ProtobufDifferenceType>([
  'MESSAGE_ADDED',
  'MESSAGE_MOVED',
  'ENUM_ADDED',
  'ENUM_REMOVED',
  'ENUM_CONST_ADDED',
  'ENUM_CONST_CHANGED',
  'ENUM_CONST_REMOVED',
  'FIELD_ADDED',
  'FIELD_REMOVED',
  'FIELD_NAME_CHANGED',
  'FIELD_STRING_OR_BYTES_LABEL_CHANGED',
  'ONEOF_ADDED',
  'ONEOF_REMOVED',
  'ONEOF_FIELD_ADDED',
  'ONEOF_FIELD_MOVED_TO_TOP_LEVEL',
]);

export interface ProtobufDifference {
  type: ProtobufDifferenceType;
  /** Confluent's path, e.g. `#/TestMessage/2`. */
  path: string;
  /** What changed, for people (names, types, labels). */
  detail: string;
  /** `Message.field` when the difference is about a field. */
  fieldPath?: string;
}

/**
 * Scalar groups whose members read each other's wire encoding (protobuf's "updating a message type"
 * rules, as Confluent groups them). An enum counts as a general varint.
 */
type ScalarKind = 'GENERAL_NUMBER' | 'SIGNED_NUMBER' | 'STRING_OR_BYTES' | 'FIXED32' | 'FIXED64' | 'FLOAT' | 'DOUBLE';
const SCALAR_KINDS: Record<string, ScalarKind> = {
  int32: 'GENERAL_NUMBER',
  int64: 'GENERAL_NUMBER',
  uint32: 'GENERAL_NUMBER',
  uint64: 'GENERAL_NUMBER',
  bool: 'GENERAL_NUMBER',
  sint32: 'SIGNED_NUMBER',
  sint64: 'SIGNED_NUMBER',
  string: 'STRING_OR_BYTES',
  bytes: 'STRING_OR_BYTES',
  fixed32: 'FIXED32',
  sfixed32: 'FIXED32',
  fixed64: 'FIXED64',
  sfixed64: 'FIXED64',
  float: 'FLOAT',
  double: 'DOUBLE',
};

interface TypeInfo {
  packageName: string;
  type: ProtoType;
  /** Local types carry the main schema's marker; bundled or command-line imports carry none. */
  reference: ProtoReference | null;
}

const LOCAL: ProtoReference = { subject: '', version: -1 };

/** Type tables and the scope stack of one comparison (Confluent's `Context`). */
class Context {
  readonly diffs: ProtobufDifference[] = [];
  readonly path: string[] = [];
  /** The named part of the path (message names), used to resolve relative type names. */
  readonly names: string[] = [];
  readonly inProgress = new Set<ProtoMessage>();
  originalPackage = '';
  updatePackage = '';

  constructor(
    readonly originalTypes: Map<string, TypeInfo>,
    readonly updateTypes: Map<string, TypeInfo>,
  ) {}

  sub(): Context {
    const c = new Context(this.originalTypes, this.updateTypes);
    for (const m of this.inProgress) c.inProgress.add(m);
    c.originalPackage = this.originalPackage;
    c.updatePackage = this.updatePackage;
    return c;
  }

  add(type: ProtobufDifferenceType, detail: string, fieldPath?: string): void {
    this.diffs.push({ type, path: `#/${this.path.join('/')}`, detail, ...(fieldPath ? { fieldPath } : {}) });
  }

  inPath<T>(segment: string, body: () => T): T {
    this.path.push(segment);
    try {
      return body();
    } finally {
      this.path.pop();
    }
  }

  inName<T>(name: string, body: () => T): T {
    this.names.push(name);
    try {
      return this.inPath(name, body);
    } finally {
      this.names.pop();
    }
  }

  table(original: boolean): Map<string, TypeInfo> {
    return original ? this.originalTypes : this.updateTypes;
  }

  /** Resolves a type name as written, from the current scope outwards (protobuf's scoping rules). */
  resolve(name: string, original: boolean): string | undefined {
    const table = this.table(original);
    if (name.startsWith('.')) return table.has(name.slice(1)) ? name.slice(1) : undefined;
    const pkg = original ? this.originalPackage : this.updatePackage;
    const prefix = [...(pkg ? [pkg] : []), ...this.names];
    while (prefix.length > 0) {
      const candidate = `${prefix.join('.')}.${name}`;
      if (table.has(candidate)) return candidate;
      prefix.pop();
    }
    return table.has(name) ? name : undefined;
  }

  typeOf(name: string, original: boolean): TypeInfo | undefined {
    const full = this.resolve(name, original);
    return full === undefined ? undefined : this.table(original).get(full);
  }

  compatible(): boolean {
    return this.diffs.every((d) => PROTOBUF_COMPATIBLE_CHANGES.has(d.type));
  }
}

function collect(table: Map<string, TypeInfo>, file: ProtoFile, reference: ProtoReference | null): void {
  const walk = (types: ProtoType[], prefix: string): void => {
    for (const type of types) {
      const full = prefix ? `${prefix}.${type.name}` : type.name;
      table.set(full, { packageName: file.package, type, reference });
      if (type.kind === 'message') walk(type.nested, full);
    }
  };
  walk(file.types, file.package);
}

function typeTable(schema: ProtobufSchema): Map<string, TypeInfo> {
  const table = new Map<string, TypeInfo>();
  for (const dep of schema.dependencies.values()) collect(table, dep.file, dep.reference ?? null);
  collect(table, schema.file, LOCAL);
  return table;
}

/** Confluent's diff of `update` against `original`: every difference, compatible or not, in a stable order. */
export function diffProtobufSchemas(original: ProtobufSchema, update: ProtobufSchema): ProtobufDifference[] {
  const ctx = new Context(typeTable(original), typeTable(update));
  ctx.originalPackage = original.file.package;
  ctx.updatePackage = update.file.package;
  if (original.file.package !== update.file.package) {
    ctx.add('PACKAGE_CHANGED', `package changed from "${original.file.package}" to "${update.file.package}"`);
  }
  compareTypes(ctx, original.file.types, update.file.types);
  return ctx.diffs;
}

function union<T>(a: Iterable<T>, b: Iterable<T>): T[] {
  return [...new Set([...a, ...b])];
}

function compareTypes(ctx: Context, original: ProtoType[], update: ProtoType[]): void {
  const index = (types: ProtoType[]) => {
    const messages = new Map<string, { message: ProtoMessage; index: number }>();
    const enums = new Map<string, ProtoEnum>();
    let i = 0;
    for (const t of types) {
      if (t.kind === 'message') messages.set(t.name, { message: t, index: i++ });
      else enums.set(t.name, t);
    }
    return { messages, enums };
  };
  const o = index(original);
  const u = index(update);
  for (const name of union(o.messages.keys(), u.messages.keys())) {
    ctx.inName(name, () => {
      const om = o.messages.get(name);
      const um = u.messages.get(name);
      if (!um) ctx.add('MESSAGE_REMOVED', `message ${name} was removed: data written as ${name} has no type to be read as`);
      else if (!om) ctx.add('MESSAGE_ADDED', `message ${name} was added`);
      else {
        compareMessage(ctx, om.message, um.message);
        // Message indexes are relative to the schema id each event names, so a move is harmless.
        if (om.index !== um.index) ctx.add('MESSAGE_MOVED', `message ${name} moved from index ${om.index} to ${um.index}`);
      }
    });
  }
  for (const name of union(o.enums.keys(), u.enums.keys())) {
    ctx.inName(name, () => {
      const oe = o.enums.get(name);
      const ue = u.enums.get(name);
      if (!ue) ctx.add('ENUM_REMOVED', `enum ${name} was removed`);
      else if (!oe) ctx.add('ENUM_ADDED', `enum ${name} was added`);
      else compareEnum(ctx, oe, ue);
    });
  }
}

function compareEnum(ctx: Context, original: ProtoEnum, update: ProtoEnum): void {
  for (const number of union(original.values.keys(), update.values.keys()).sort((a, b) => a - b)) {
    ctx.inPath(String(number), () => {
      const o = original.values.get(number);
      const u = update.values.get(number);
      if (u === undefined)
        ctx.add('ENUM_CONST_REMOVED', `enum constant ${o} = ${number} was removed (readers keep it as an unknown value)`);
      else if (o === undefined) ctx.add('ENUM_CONST_ADDED', `enum constant ${u} = ${number} was added`);
      else if (o !== u) ctx.add('ENUM_CONST_CHANGED', `enum constant ${number} renamed from ${o} to ${u}`);
    });
  }
}

function fieldPathOf(ctx: Context, field: ProtoField): string {
  return [...ctx.names, field.name].join('.');
}

function compareMessage(ctx: Context, original: ProtoMessage, update: ProtoMessage): void {
  // A message reached again through its own fields (recursion) is already being compared.
  if (!ctx.inProgress.has(original)) {
    ctx.inProgress.add(original);
    try {
      compareMessageFields(ctx, original, update);
    } finally {
      ctx.inProgress.delete(original);
    }
  }
  compareTypes(ctx, original.nested, update.nested);
}

function compareMessageFields(ctx: Context, original: ProtoMessage, update: ProtoMessage): void {
  // Every field by number, top-level and oneof members alike, with its oneof: the diff is per field
  // number across the whole message, so a oneof rename or a move in or out of a oneof cannot hide a
  // type change or a removal.
  const collect = (m: ProtoMessage) => {
    const byNumber = new Map<number, ProtoField>();
    const oneofOf = new Map<number, string>();
    for (const f of m.fields) byNumber.set(f.number, f);
    for (const o of m.oneofs) {
      for (const f of o.fields) {
        byNumber.set(f.number, f);
        oneofOf.set(f.number, o.name);
      }
    }
    return { byNumber, oneofOf, oneofs: new Map(m.oneofs.map((o) => [o.name, o])) };
  };
  const o = collect(original);
  const u = collect(update);

  // A oneof gone by name with none of its members left anywhere was deleted as a whole: compatible.
  const deletedOneofs = new Set<string>();
  for (const [name, oneof] of o.oneofs) {
    if (!u.oneofs.has(name) && !oneof.fields.some((f) => u.byNumber.has(f.number))) deletedOneofs.add(name);
  }

  // New mutual exclusivity: a oneof of the update whose existing members came from more than one
  // group of the original (an original oneof, or each top-level field on its own). Data that set
  // them together cannot be read; brand-new members do not count (old data never set them).
  for (const oneof of update.oneofs) {
    ctx.inPath(oneof.name, () => {
      const groups = new Set<string>();
      let topLevelMovedIn = 0;
      for (const f of oneof.fields) {
        const from = o.oneofOf.get(f.number);
        if (from !== undefined) groups.add(`oneof:${from}`);
        else if (o.byNumber.has(f.number)) {
          groups.add(`field:${f.number}`);
          topLevelMovedIn++;
        }
      }
      if (groups.size > 1) {
        if (topLevelMovedIn > 1)
          ctx.add(
            'MULTIPLE_FIELDS_MOVED_TO_ONEOF',
            `${topLevelMovedIn} existing fields moved into oneof ${oneof.name}: data that set them together cannot be read`,
          );
        else
          ctx.add(
            'FIELD_MOVED_TO_EXISTING_ONEOF',
            `oneof ${oneof.name} now joins fields that were independent before: data that set them together cannot be read`,
          );
      }
    });
  }

  for (const name of union(o.oneofs.keys(), u.oneofs.keys()).sort()) {
    ctx.inPath(name, () => {
      if (!u.oneofs.has(name)) ctx.add('ONEOF_REMOVED', `oneof ${name} was removed`);
      else if (!o.oneofs.has(name)) ctx.add('ONEOF_ADDED', `oneof ${name} was added`);
    });
  }

  for (const number of union(o.byNumber.keys(), u.byNumber.keys()).sort((a, b) => a - b)) {
    const of = o.byNumber.get(number);
    const uf = u.byNumber.get(number);
    const fromOneof = o.oneofOf.get(number);
    const toOneof = u.oneofOf.get(number);
    if (!uf) {
      const f = of as ProtoField;
      if (fromOneof !== undefined) {
        // A member gone from the message: its data is lost, unless its whole oneof went with it.
        if (!deletedOneofs.has(fromOneof)) {
          ctx.inPath(fromOneof, () =>
            ctx.inPath(String(number), () =>
              ctx.add(
                'ONEOF_FIELD_REMOVED',
                `field ${f.name} = ${number} was removed from oneof ${fromOneof}: data that set it reads as an unset oneof`,
                fieldPathOf(ctx, f),
              ),
            ),
          );
        }
      } else {
        ctx.inPath(String(number), () => {
          if (f.label === 'required')
            ctx.add(
              'REQUIRED_FIELD_REMOVED',
              `required field ${f.name} = ${number} was removed: proto2 readers of the update reject data without it`,
              fieldPathOf(ctx, f),
            );
          else ctx.add('FIELD_REMOVED', `field ${f.name} = ${number} was removed (readers skip it as unknown)`, fieldPathOf(ctx, f));
        });
      }
    } else if (!of) {
      if (toOneof !== undefined) {
        ctx.inPath(toOneof, () =>
          ctx.inPath(String(number), () =>
            ctx.add('ONEOF_FIELD_ADDED', `field ${uf.name} = ${number} was added to oneof ${toOneof}`, fieldPathOf(ctx, uf)),
          ),
        );
      } else {
        ctx.inPath(String(number), () => {
          if (uf.label === 'required')
            ctx.add(
              'REQUIRED_FIELD_ADDED',
              `required field ${uf.name} = ${number} was added: data written without it fails to parse`,
              fieldPathOf(ctx, uf),
            );
          else ctx.add('FIELD_ADDED', `field ${uf.name} = ${number} was added`, fieldPathOf(ctx, uf));
        });
      }
    } else {
      // Moving out of a oneof only relaxes its exclusivity: compatible, but recorded.
      if (fromOneof !== undefined && toOneof === undefined) {
        ctx.inPath(String(number), () =>
          ctx.add('ONEOF_FIELD_MOVED_TO_TOP_LEVEL', `field ${uf.name} = ${number} moved out of oneof ${fromOneof}`, fieldPathOf(ctx, uf)),
        );
      }
      // Contents are compared wherever the field now is.
      if (toOneof !== undefined) ctx.inPath(toOneof, () => ctx.inPath(String(number), () => compareField(ctx, of, uf)));
      else ctx.inPath(String(number), () => compareField(ctx, of, uf));
    }
  }
}

function compareField(ctx: Context, original: ProtoField, update: ProtoField): void {
  if (original.name !== update.name)
    ctx.add(
      'FIELD_NAME_CHANGED',
      `field ${original.number} renamed from ${original.name} to ${update.name} (the number is what the wire carries)`,
      fieldPathOf(ctx, update),
    );
  compareLabelsAndTypes(ctx, original.label, update.label, typeRef(original), typeRef(update), fieldPathOf(ctx, update));
}

/** A field's type for the comparison: a map, or a named/scalar type as written. */
type TypeRef = { map: true; key: string; value: string } | { map: false; name: string };

function typeRef(field: ProtoField): TypeRef {
  return field.keyType !== undefined ? { map: true, key: field.keyType, value: field.type } : { map: false, name: field.type };
}

function show(t: TypeRef): string {
  return t.map ? `map<${t.key}, ${t.value}>` : t.name;
}

type Kind = 'SCALAR' | 'MAP' | 'MESSAGE';

function kindOf(ctx: Context, t: TypeRef, original: boolean): Kind {
  if (t.map) return 'MAP';
  if (PROTO_SCALARS.has(t.name)) return 'SCALAR';
  return ctx.typeOf(t.name, original)?.type.kind === 'enum' ? 'SCALAR' : 'MESSAGE';
}

function scalarKindOf(ctx: Context, name: string, original: boolean): ScalarKind {
  if (ctx.typeOf(name, original)?.type.kind === 'enum') return 'GENERAL_NUMBER';
  return SCALAR_KINDS[name] ?? 'GENERAL_NUMBER';
}

function compareLabelsAndTypes(
  ctx: Context,
  originalLabel: ProtoLabel,
  updateLabel: ProtoLabel,
  original: TypeRef,
  update: TypeRef,
  fieldPath: string,
): void {
  const ok = kindOf(ctx, original, true);
  const uk = kindOf(ctx, update, false);
  if (ok !== uk) {
    ctx.add(
      'FIELD_KIND_CHANGED',
      `type changed from ${show(original)} to ${show(update)}: ${ok.toLowerCase()} and ${uk.toLowerCase()} values have different wire encodings`,
      fieldPath,
    );
    return;
  }
  if (ok === 'MAP' && original.map && update.map) {
    compareLabelsAndTypes(ctx, null, null, { map: false, name: original.key }, { map: false, name: update.key }, fieldPath);
    compareLabelsAndTypes(ctx, null, null, { map: false, name: original.value }, { map: false, name: update.value }, fieldPath);
    return;
  }
  if (original.map || update.map) return;
  if (ok === 'SCALAR') {
    const os = scalarKindOf(ctx, original.name, true);
    const us = scalarKindOf(ctx, update.name, false);
    if (os !== us) {
      ctx.add(
        'FIELD_SCALAR_KIND_CHANGED',
        `type changed from ${original.name} to ${update.name}: they are not in the same wire-compatible group`,
        fieldPath,
      );
    } else if (originalLabel !== null && updateLabel !== null && originalLabel !== updateLabel) {
      if (os === 'STRING_OR_BYTES')
        ctx.add('FIELD_STRING_OR_BYTES_LABEL_CHANGED', `label changed from ${originalLabel} to ${updateLabel}`, fieldPath);
      else
        ctx.add(
          'FIELD_NUMERIC_LABEL_CHANGED',
          `label changed from ${originalLabel} to ${updateLabel}: a numeric field's encoding (packed or not) changes with it`,
          fieldPath,
        );
    }
    return;
  }
  compareMessageTypes(ctx, original.name, update.name, fieldPath);
}

function compareMessageTypes(ctx: Context, original: string, update: string, fieldPath: string): void {
  const of = ctx.resolve(original, true);
  const uf = ctx.resolve(update, false);
  if (of === undefined || uf === undefined) {
    if (original !== update) ctx.add('FIELD_NAMED_TYPE_CHANGED', `message type changed from ${original} to ${update}`, fieldPath);
    return;
  }
  const ot = ctx.originalTypes.get(of) as TypeInfo;
  const ut = ctx.updateTypes.get(uf) as TypeInfo;
  const local = (full: string, info: TypeInfo) =>
    info.packageName && full.startsWith(`${info.packageName}.`) ? full.slice(info.packageName.length + 1) : full;
  const ol = local(of, ot);
  const ul = local(uf, ut);
  if (ol !== ul) {
    ctx.add('FIELD_NAMED_TYPE_CHANGED', `message type changed from ${of} to ${uf}`, fieldPath);
    return;
  }
  // Local types are compared where they are declared; a type from the same subject version is identical.
  const same =
    ot.reference !== null &&
    ut.reference !== null &&
    ot.reference.subject === ut.reference.subject &&
    ot.reference.version === ut.reference.version;
  if (same || ot.type.kind !== 'message' || ut.type.kind !== 'message') return;
  const sub = ctx.sub();
  sub.originalPackage = ot.packageName;
  sub.updatePackage = ut.packageName;
  sub.path.push(...ol.split('.'));
  sub.names.push(...ol.split('.'));
  compareMessage(sub, ot.type, ut.type);
  ctx.diffs.push(...sub.diffs);
  if (!sub.compatible())
    ctx.add(
      'FIELD_NAMED_TYPE_CHANGED',
      `message type ${ol} changed incompatibly (see the differences at #/${ol.split('.').join('/')})`,
      fieldPath,
    );
}

/**
 * Why a consumer reading with `reader` cannot read data written with `writer`: Confluent's diff with
 * the writer as the original and the reader as the update, keeping only the incompatible differences.
 */
export function checkProtobufReaderWriter(reader: ProtobufSchema, writer: ProtobufSchema): Incompatibility[] {
  return diffProtobufSchemas(writer, reader)
    .filter((d) => !PROTOBUF_COMPATIBLE_CHANGES.has(d.type))
    .map((d) => ({ rule: d.type, message: d.detail, location: d.path, ...(d.fieldPath ? { fieldPath: d.fieldPath } : {}) }));
}
