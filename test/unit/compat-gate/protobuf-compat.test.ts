import { describe, expect, it } from 'vitest';
import { checkCompatibility } from '../../../services/compat-gate/checker.js';
import { diffProtobufSchemas, PROTOBUF_COMPATIBLE_CHANGES } from '../../../services/compat-gate/protobuf-diff.js';
import { parseProtobufSchema, type ProtoReferenceTexts } from '../../../services/compat-gate/protobuf-schema.js';

/**
 * Confluent Schema Registry's Protobuf rules, one test per rule: each names the difference type its
 * diff reports, at Confluent's path, and whether BACKWARD (new reads old) accepts it. Where Apicurio
 * (protolock rules) decides otherwise, the test says so: the project follows Confluent.
 */

const P3 = 'syntax = "proto3";\n';
const P2 = 'syntax = "proto2";\n';

function changes(original: string, update: string, refs?: { original?: ProtoReferenceTexts; update?: ProtoReferenceTexts }): string[] {
  return diffProtobufSchemas(parseProtobufSchema(original, refs?.original), parseProtobufSchema(update, refs?.update)).map(
    (d) => `${d.type} ${d.path}`,
  );
}

/** Confluent's BACKWARD verdict: the update reads data written with the original. */
function backward(original: string, update: string): boolean {
  return checkCompatibility({ type: 'protobuf', level: 'BACKWARD', schema: update, previous: [original] }).compatible;
}

describe('Protobuf compatibility (Confluent rules)', () => {
  it('adding a field is FIELD_ADDED, compatible (Apicurio: fails FORWARD/FULL, see local-stack notes)', () => {
    const v1 = `${P3}message Order { string id = 1; }`;
    const v2 = `${P3}message Order { string id = 1; int64 total = 2; }`;
    expect(changes(v1, v2)).toEqual(['FIELD_ADDED #/Order/2']);
    expect(backward(v1, v2)).toBe(true);
    // FIELD_REMOVED is compatible too, so Confluent's FULL accepts both directions.
    expect(checkCompatibility({ type: 'protobuf', level: 'FULL', schema: v2, previous: [v1] }).compatible).toBe(true);
  });

  it('removing a field is FIELD_REMOVED, compatible even without `reserved` (Apicurio: rejects an unreserved removal)', () => {
    const v1 = `${P3}message Order { string id = 1; string note = 2; }`;
    const v2 = `${P3}message Order { string id = 1; }`;
    expect(changes(v1, v2)).toEqual(['FIELD_REMOVED #/Order/2']);
    expect(backward(v1, v2)).toBe(true);
  });

  it('renaming a field keeps its number: FIELD_NAME_CHANGED, compatible (Apicurio: rejects a rename)', () => {
    const v1 = `${P3}message Order { string id = 1; }`;
    const v2 = `${P3}message Order { string order_id = 1; }`;
    expect(changes(v1, v2)).toEqual(['FIELD_NAME_CHANGED #/Order/1']);
    expect(backward(v1, v2)).toBe(true);
  });

  it('changing a field number is a removal plus an addition, compatible (Apicurio: rejects a number change)', () => {
    const v1 = `${P3}message Order { string id = 1; }`;
    const v2 = `${P3}message Order { string id = 2; }`;
    expect(changes(v1, v2)).toEqual(['FIELD_REMOVED #/Order/1', 'FIELD_ADDED #/Order/2']);
    expect(backward(v1, v2)).toBe(true);
  });

  it('adding a proto2 required field is REQUIRED_FIELD_ADDED, incompatible', () => {
    const v1 = `${P2}message Order { optional string id = 1; }`;
    const v2 = `${P2}message Order { optional string id = 1; required string currency = 2; }`;
    expect(changes(v1, v2)).toEqual(['REQUIRED_FIELD_ADDED #/Order/2']);
    expect(backward(v1, v2)).toBe(false);
  });

  it('removing a proto2 required field is REQUIRED_FIELD_REMOVED, incompatible', () => {
    const v1 = `${P2}message Order { optional string id = 1; required string currency = 2; }`;
    const v2 = `${P2}message Order { optional string id = 1; }`;
    expect(changes(v1, v2)).toEqual(['REQUIRED_FIELD_REMOVED #/Order/2']);
    expect(backward(v1, v2)).toBe(false);
  });

  it('scalars within one wire group are interchangeable: int32/int64/uint32/uint64/bool and an enum (Apicurio: rejects a type change such as int64 -> int32)', () => {
    const v1 = `${P3}message M { int32 a = 1; uint64 b = 2; bool c = 3; int32 d = 4; }`;
    const v2 = `${P3}message M { int64 a = 1; bool b = 2; uint32 c = 3; Status d = 4; }\nenum Status { A = 0; }`;
    expect(changes(v1, v2)).toEqual(['ENUM_ADDED #/Status']);
    expect(backward(v1, v2)).toBe(true);
  });

  it('string and bytes are one group; sint32/sint64, fixed32/sfixed32 and fixed64/sfixed64 are groups of their own', () => {
    expect(
      changes(
        `${P3}message M { string a = 1; sint32 b = 2; fixed32 c = 3; fixed64 d = 4; }`,
        `${P3}message M { bytes a = 1; sint64 b = 2; sfixed32 c = 3; sfixed64 d = 4; }`,
      ),
    ).toEqual([]);
  });

  it('a scalar moving to another wire group is FIELD_SCALAR_KIND_CHANGED, incompatible (zig-zag, fixed width, float, double)', () => {
    for (const [from, to] of [
      ['int32', 'sint32'],
      ['int32', 'string'],
      ['fixed32', 'fixed64'],
      ['float', 'double'],
      ['int64', 'fixed64'],
    ] as const) {
      const v1 = `${P3}message M { ${from} a = 1; }`;
      const v2 = `${P3}message M { ${to} a = 1; }`;
      expect(changes(v1, v2), `${from} -> ${to}`).toEqual(['FIELD_SCALAR_KIND_CHANGED #/M/1']);
      expect(backward(v1, v2)).toBe(false);
    }
  });

  it('scalar <-> message <-> map is FIELD_KIND_CHANGED, incompatible', () => {
    const v1 = `${P3}message M { int32 a = 1; map<string, int32> b = 2; }`;
    const v2 = `${P3}message M { N a = 1; N b = 2; }\nmessage N { string s = 1; }`;
    const found = changes(v1, v2);
    expect(found).toContain('FIELD_KIND_CHANGED #/M/1');
    expect(found).toContain('FIELD_KIND_CHANGED #/M/2');
    expect(found).toContain('MESSAGE_ADDED #/N');
    expect(backward(v1, v2)).toBe(false);
  });

  it('map keys and values follow the scalar groups', () => {
    expect(changes(`${P3}message M { map<string, int32> m = 1; }`, `${P3}message M { map<string, int64> m = 1; }`)).toEqual([]);
    expect(changes(`${P3}message M { map<string, int32> m = 1; }`, `${P3}message M { map<string, string> m = 1; }`)).toEqual([
      'FIELD_SCALAR_KIND_CHANGED #/M/1',
    ]);
  });

  it('a field of another message type is FIELD_NAMED_TYPE_CHANGED, incompatible', () => {
    const v1 = `${P3}message M { A f = 1; }\nmessage A { string s = 1; }`;
    const v2 = `${P3}message M { B f = 1; }\nmessage B { string s = 1; }`;
    expect(changes(v1, v2).sort()).toEqual(['FIELD_NAMED_TYPE_CHANGED #/M/1', 'MESSAGE_ADDED #/B', 'MESSAGE_REMOVED #/A']);
    expect(backward(v1, v2)).toBe(false);
  });

  it('qualifying a type name differently is no change (resolution by scope)', () => {
    expect(
      changes(
        `${P3}package foo;\nmessage M { S s = 1; message S { string t = 1; } }`,
        `${P3}package foo;\nmessage M { .foo.M.S s = 1; message S { string t = 1; } }`,
      ),
    ).toEqual([]);
  });

  it('a numeric field changing label (optional <-> repeated) is FIELD_NUMERIC_LABEL_CHANGED, incompatible', () => {
    const v1 = `${P3}message M { optional int32 a = 1; }`;
    const v2 = `${P3}message M { repeated int32 a = 1; }`;
    expect(changes(v1, v2)).toEqual(['FIELD_NUMERIC_LABEL_CHANGED #/M/1']);
    expect(backward(v1, v2)).toBe(false);
  });

  it('a string or bytes field changing label is FIELD_STRING_OR_BYTES_LABEL_CHANGED, compatible; a message field changing label is no difference', () => {
    expect(changes(`${P3}message M { optional string a = 1; }`, `${P3}message M { repeated string a = 1; }`)).toEqual([
      'FIELD_STRING_OR_BYTES_LABEL_CHANGED #/M/1',
    ]);
    expect(backward(`${P3}message M { optional bytes a = 1; }`, `${P3}message M { repeated bytes a = 1; }`)).toBe(true);
    expect(changes(`${P3}message M { optional N a = 1; }\nmessage N {}`, `${P3}message M { repeated N a = 1; }\nmessage N {}`)).toEqual([]);
  });

  it('proto3 implicit presence has no label to compare (int32 -> repeated int32 is no label change)', () => {
    expect(changes(`${P3}message M { int32 a = 1; }`, `${P3}message M { repeated int32 a = 1; }`)).toEqual([]);
  });

  it('moving one field into a new oneof is ONEOF_ADDED, compatible', () => {
    const v1 = `${P3}message M { string a = 1; string b = 2; }`;
    const v2 = `${P3}message M { string a = 1; oneof choice { string b = 2; int32 c = 3; } }`;
    expect(changes(v1, v2)).toEqual(['ONEOF_ADDED #/M/choice', 'ONEOF_FIELD_ADDED #/M/choice/3']);
    expect(backward(v1, v2)).toBe(true);
  });

  it('moving several existing fields into one oneof is MULTIPLE_FIELDS_MOVED_TO_ONEOF, incompatible', () => {
    const v1 = `${P3}message M { string a = 1; string b = 2; }`;
    const v2 = `${P3}message M { oneof choice { string a = 1; string b = 2; } }`;
    expect(changes(v1, v2)).toEqual(['MULTIPLE_FIELDS_MOVED_TO_ONEOF #/M/choice', 'ONEOF_ADDED #/M/choice']);
    expect(backward(v1, v2)).toBe(false);
  });

  it('moving a field into a oneof that holds fields of an earlier oneof is FIELD_MOVED_TO_EXISTING_ONEOF, incompatible', () => {
    const v1 = `${P3}message M { string a = 1; oneof choice { string b = 2; } }`;
    const v2 = `${P3}message M { oneof choice { string a = 1; string b = 2; } }`;
    expect(changes(v1, v2)).toContain('FIELD_MOVED_TO_EXISTING_ONEOF #/M/choice');
    expect(backward(v1, v2)).toBe(false);
  });

  it('adding a field to a oneof is ONEOF_FIELD_ADDED, compatible; removing one is ONEOF_FIELD_REMOVED, incompatible', () => {
    const v1 = `${P3}message M { oneof choice { string a = 1; string b = 2; } }`;
    const v2 = `${P3}message M { oneof choice { string a = 1; string b = 2; int32 c = 3; } }`;
    expect(changes(v1, v2)).toEqual(['ONEOF_FIELD_ADDED #/M/choice/3']);
    expect(backward(v1, v2)).toBe(true);
    expect(changes(v2, v1)).toEqual(['ONEOF_FIELD_REMOVED #/M/choice/3']);
    expect(backward(v2, v1)).toBe(false);
  });

  it('moving a field out of a oneof is ONEOF_FIELD_MOVED_TO_TOP_LEVEL, compatible; its type is still compared by number', () => {
    const v1 = `${P3}message M { oneof choice { string a = 1; string b = 2; } }`;
    const out = `${P3}message M { string a = 1; oneof choice { string b = 2; } }`;
    expect(changes(v1, out)).toEqual(['ONEOF_FIELD_MOVED_TO_TOP_LEVEL #/M/1']);
    expect(backward(v1, out)).toBe(true);
    expect(changes(v1, `${P3}message M { int32 a = 1; oneof choice { string b = 2; } }`)).toEqual([
      'ONEOF_FIELD_MOVED_TO_TOP_LEVEL #/M/1',
      'FIELD_SCALAR_KIND_CHANGED #/M/1',
    ]);
  });

  it('a oneof deleted as a whole is ONEOF_REMOVED, compatible; losing one member of a surviving oneof is not', () => {
    const v1 = `${P3}message M { string id = 1; oneof pay { string card = 2; string iban = 3; } }`;
    expect(changes(v1, `${P3}message M { string id = 1; }`)).toEqual(['ONEOF_REMOVED #/M/pay']);
    expect(backward(v1, `${P3}message M { string id = 1; }`)).toBe(true);
    // Renamed, one member kept: the other member's data is lost.
    const renamed = `${P3}message M { string id = 1; oneof payment { string card = 2; } }`;
    expect(changes(v1, renamed)).toEqual(['ONEOF_REMOVED #/M/pay', 'ONEOF_ADDED #/M/payment', 'ONEOF_FIELD_REMOVED #/M/pay/3']);
    expect(backward(v1, renamed)).toBe(false);
  });

  it('a renamed oneof cannot hide a type change: its fields are compared by number where they now are', () => {
    expect(changes(`${P3}message M { oneof x { string a = 1; } }`, `${P3}message M { oneof y { string a = 1; } }`)).toEqual([
      'ONEOF_REMOVED #/M/x',
      'ONEOF_ADDED #/M/y',
    ]);
    expect(changes(`${P3}message M { oneof x { string a = 1; } }`, `${P3}message M { oneof y { int64 a = 1; } }`)).toEqual([
      'ONEOF_REMOVED #/M/x',
      'ONEOF_ADDED #/M/y',
      'FIELD_SCALAR_KIND_CHANGED #/M/y/1',
    ]);
  });

  it('removing a message is MESSAGE_REMOVED, incompatible; adding one is MESSAGE_ADDED, compatible', () => {
    const v1 = `${P3}message A { string s = 1; }\nmessage B { string s = 1; }`;
    const v2 = `${P3}message A { string s = 1; }`;
    expect(changes(v1, v2)).toEqual(['MESSAGE_REMOVED #/B']);
    expect(backward(v1, v2)).toBe(false);
    expect(changes(v2, v1)).toEqual(['MESSAGE_ADDED #/B']);
    expect(backward(v2, v1)).toBe(true);
  });

  it('reordering messages is MESSAGE_MOVED, compatible (message indexes are relative to each schema id)', () => {
    const v1 = `${P3}message A { string s = 1; }\nmessage B { string s = 1; }`;
    const v2 = `${P3}message B { string s = 1; }\nmessage A { string s = 1; }`;
    expect(changes(v1, v2)).toEqual(['MESSAGE_MOVED #/A', 'MESSAGE_MOVED #/B']);
    expect(backward(v1, v2)).toBe(true);
  });

  it('nested messages and enums are compared in place, with their path', () => {
    const v1 = `${P3}message W { int32 x = 1; message Inner { string s = 1; } enum E { A = 0; B = 1; } }`;
    const v2 = `${P3}message W { int32 x = 1; message Inner { string s = 1; string t = 2; } enum E { A = 0; } }`;
    expect(changes(v1, v2)).toEqual(['FIELD_ADDED #/W/Inner/2', 'ENUM_CONST_REMOVED #/W/E/1']);
    expect(backward(v1, v2)).toBe(true);
  });

  it('enum constants: added, removed, renamed are all compatible; removing a whole enum is ENUM_REMOVED, compatible', () => {
    const v1 = `${P3}enum S { A = 0; B = 1; C = 2; }\nmessage M { S s = 1; }`;
    const v2 = `${P3}enum S { A = 0; BEE = 1; D = 3; }\nmessage M { S s = 1; }`;
    expect(changes(v1, v2)).toEqual(['ENUM_CONST_CHANGED #/S/1', 'ENUM_CONST_REMOVED #/S/2', 'ENUM_CONST_ADDED #/S/3']);
    expect(backward(v1, v2)).toBe(true);
    expect(changes(`${P3}message M { int32 s = 1; }\nenum S { A = 0; }`, `${P3}message M { int32 s = 1; }`)).toEqual(['ENUM_REMOVED #/S']);
  });

  it("a package change is PACKAGE_CHANGED, incompatible on Confluent's main line (Apicurio accepts it)", () => {
    const v1 = `${P3}package foo;\nmessage M { string s = 1; }`;
    const v2 = `${P3}package bar;\nmessage M { string s = 1; }`;
    expect(changes(v1, v2)).toEqual(['PACKAGE_CHANGED #/']);
    expect(PROTOBUF_COMPATIBLE_CHANGES.has('PACKAGE_CHANGED')).toBe(false);
    expect(backward(v1, v2)).toBe(false);
  });

  it('a syntax change alone is no difference for Confluent; only what it does to labels counts', () => {
    expect(changes(`${P2}message M { optional string s = 1; }`, `${P3}message M { string s = 1; }`)).toEqual([]);
    // proto2 optional -> proto3 repeated: both labels known, a numeric field: incompatible.
    expect(changes(`${P2}message M { optional int32 s = 1; }`, `${P3}message M { repeated int32 s = 1; }`)).toEqual([
      'FIELD_NUMERIC_LABEL_CHANGED #/M/1',
    ]);
  });

  it('reserved statements and options do not change the verdict (Apicurio: reusing a reserved number is rejected)', () => {
    const v1 = `${P3}option java_package = "x";\nmessage M { reserved 2; reserved "old"; string s = 1 [deprecated = true]; }`;
    const v2 = `${P3}message M { string s = 1; int32 old = 2; }`;
    expect(changes(v1, v2)).toEqual(['FIELD_ADDED #/M/2']);
    const parsed = parseProtobufSchema(v1).file.types[0];
    expect(parsed?.kind === 'message' ? [parsed.reservedRanges, parsed.reservedNames] : undefined).toEqual([[[2, 2]], ['old']]);
  });

  it('well-known types resolve from the bundled definitions; a changed imported message is compared field by field', () => {
    const ts = `${P3}import "google/protobuf/timestamp.proto";\nmessage M { google.protobuf.Timestamp at = 1; }`;
    expect(changes(ts, ts)).toEqual([]);
    const money = (type: string) => new Map([['money.proto', { text: `${P3}package shop;\nmessage Money { ${type} units = 1; }` }]]);
    const v = `${P3}import "money.proto";\nmessage Order { .shop.Money total = 1; }`;
    expect(changes(v, v, { original: money('int64'), update: money('int32') })).toEqual([]);
    expect(changes(v, v, { original: money('int64'), update: money('string') })).toEqual([
      'FIELD_SCALAR_KIND_CHANGED #/Money/1',
      'FIELD_NAMED_TYPE_CHANGED #/Order/1',
    ]);
  });

  it('moving a message into an import removes it from the schema: MESSAGE_REMOVED, incompatible', () => {
    const local = `${P3}message Order { Money total = 1; }\nmessage Money { int64 units = 1; }`;
    const imported = `${P3}import "money.proto";\nmessage Order { .shop.Money total = 1; }`;
    const refs = new Map([['money.proto', { text: `${P3}package shop;\nmessage Money { int64 units = 1; }` }]]);
    expect(changes(local, imported, { update: refs })).toEqual(['MESSAGE_REMOVED #/Money']);
  });

  it('recursive messages terminate', () => {
    const v = `${P3}message Node { string v = 1; repeated Node children = 2; }`;
    expect(changes(v, `${P3}message Node { string v = 1; repeated Node children = 2; int32 depth = 3; }`)).toEqual([
      'FIELD_ADDED #/Node/3',
    ]);
  });

  it('levels: FORWARD swaps the roles, the transitive forms check every version, NONE checks nothing', () => {
    const v1 = `${P2}message M { optional string a = 1; }`;
    const v2 = `${P2}message M { optional string a = 1; required string b = 2; }`;
    const v3 = `${P2}message M { optional string a = 1; required string b = 2; optional string c = 3; }`;
    // v2 adds a required field: BACKWARD fails; FORWARD (v1 reads v2: v2 -> v1 removes it) fails too.
    expect(
      checkCompatibility({ type: 'protobuf', level: 'FORWARD', schema: v2, previous: [v1] }).messages.map((m) => [m.rule, m.direction]),
    ).toEqual([['REQUIRED_FIELD_REMOVED', 'forward']]);
    expect(checkCompatibility({ type: 'protobuf', level: 'BACKWARD', schema: v3, previous: [v1, v2] }).compatible).toBe(true);
    const transitive = checkCompatibility({ type: 'protobuf', level: 'BACKWARD_TRANSITIVE', schema: v3, previous: [v1, v2] });
    expect(transitive.messages.map((m) => [m.rule, m.version, m.location, m.fieldPath])).toEqual([
      ['REQUIRED_FIELD_ADDED', 1, '#/M/2', 'M.b'],
    ]);
    expect(
      checkCompatibility({ type: 'protobuf', level: 'FULL_TRANSITIVE', schema: v3, previous: [v1, v2] }).messages.map((m) => m.direction),
    ).toEqual(['backward', 'forward']);
    expect(checkCompatibility({ type: 'protobuf', level: 'NONE', schema: v2, previous: [v1] }).compatible).toBe(true);
  });

  it('bad input: unparseable text and unresolvable imports are PARITY_BAD_INPUT', () => {
    expect(() => parseProtobufSchema(`${P3}message M { string = 1; }`)).toThrow(/not a valid \.proto file/);
    expect(() => parseProtobufSchema(`${P3}import "nowhere.proto";\nmessage M {}`)).toThrow(
      expect.objectContaining({ code: 'PARITY_BAD_INPUT', hint: expect.stringContaining('--reference nowhere.proto=FILE') }),
    );
  });
});

/**
 * Where Apicurio's verdict differs from Confluent's (Apicurio checks Protobuf with protolock's
 * rules), as the JSON Schema fixtures list their divergences: Confluent's verdict is asserted, the
 * reason says what Apicurio does. test/integration/compat-gate/protobuf.test.ts checks Apicurio's
 * side of each on the real registry.
 */
const APICURIO_DIFFERS: { change: string; level: 'BACKWARD' | 'FORWARD'; v1: string; v2: string; confluent: boolean; apicurio: string }[] =
  [
    {
      change: 'field rename',
      level: 'BACKWARD',
      v1: 'string id = 1; int64 total = 2;',
      v2: 'string id = 1; int64 amount = 2;',
      confluent: true,
      apicurio: 'rejects: protolock forbids renaming a field',
    },
    {
      change: 'field number change',
      level: 'BACKWARD',
      v1: 'string id = 1; int64 total = 2;',
      v2: 'string id = 1; int64 total = 3;',
      confluent: true,
      apicurio: 'rejects: protolock forbids changing a field number',
    },
    {
      change: 'removal without reserved',
      level: 'BACKWARD',
      v1: 'string id = 1; int64 total = 2;',
      v2: 'string id = 1;',
      confluent: true,
      apicurio: 'rejects: protolock wants the number and name reserved',
    },
    {
      change: 'field addition under FORWARD',
      level: 'FORWARD',
      v1: 'string id = 1;',
      v2: 'string id = 1; string note = 2;',
      confluent: true,
      apicurio: 'rejects a plain addition under FORWARD and FULL',
    },
    {
      change: 'int64 -> int32',
      level: 'BACKWARD',
      v1: 'string id = 1; int64 total = 2;',
      v2: 'string id = 1; int32 total = 2;',
      confluent: true,
      apicurio: 'rejects any type change, even inside a wire group',
    },
  ];

describe('Protobuf: where Apicurio differs (Confluent asserted)', () => {
  it.each(APICURIO_DIFFERS)('$change: Confluent says $confluent; Apicurio $apicurio', ({ level, v1, v2, confluent }) => {
    const wrap = (body: string) => `${P3}package shop;\nmessage Order { ${body} }`;
    expect(checkCompatibility({ type: 'protobuf', level, schema: wrap(v2), previous: [wrap(v1)] }).compatible).toBe(confluent);
  });

  it('package change: Confluent rejects it; Apicurio accepts it', () => {
    expect(backward(`${P3}package shop;\nmessage M { string s = 1; }`, `${P3}package shop.v2;\nmessage M { string s = 1; }`)).toBe(false);
  });
});
