/**
 * Protobuf schemas as runtime codecs (protobufjs): a schema's text plus the texts of its imports
 * become one resolved Root, and message indexes (see protobuf-wire.ts) name a message type in it.
 */
import { createRequire } from 'node:module';
import type protobuf from 'protobufjs';
import { ParityError } from '../../services/core/errors.js';

// protobufjs (CommonJS) is required on the first Protobuf schema, not at import: the CDC and the consumers
// import this module with every format, and only the Protobuf one needs the library's resident code.
const requireLazily = createRequire(import.meta.url);
const library = (): typeof protobuf => requireLazily('protobufjs') as typeof protobuf;

type Json = { nested?: Record<string, Json>; fields?: unknown; values?: unknown };

/** Import name -> text, for imports that are not bundled well-known types. */
export type ImportTexts = ReadonlyMap<string, { text: string }>;

export interface ProtobufCodec {
  root: protobuf.Root;
  /** The message type at a message-index path; PARITY_DECODE when the path points at nothing. */
  typeAt(indexes: readonly number[]): protobuf.Type;
  /** The index path of a message by its name relative to the package (`Envelope`, `Outer.Inner`), or undefined. */
  indexesOf(localName: string): number[] | undefined;
  /** Dotted local name of the message at an index path. */
  localNameAt(indexes: readonly number[]): string;
}

function messagesOf(json: Json | undefined): [string, Json][] {
  return Object.entries(json?.nested ?? {}).filter(([, v]) => v.fields !== undefined);
}

/**
 * Builds a codec from a schema's text. Imports come from `imports`, else from protobufjs' bundled
 * well-known types; anything else is PARITY_BAD_INPUT.
 */
export function protobufCodec(text: string, imports: ImportTexts = new Map()): ProtobufCodec {
  const protobuf = library();
  const options = { keepCase: true };
  let main: protobuf.IParserResult;
  try {
    main = protobuf.parse(text, options);
  } catch (err) {
    throw new ParityError('PARITY_BAD_INPUT', `not a valid .proto schema: ${(err as Error).message}`, { cause: err });
  }
  const pkg = main.package ?? '';
  // Declaration order of this file alone: message indexes count only its own messages.
  let own: Json | undefined = main.root.toJSON() as Json;
  for (const part of pkg ? pkg.split('.') : []) own = own?.nested?.[part];

  const root = new protobuf.Root();
  const loaded = new Set<string>();
  const load = (name: string): void => {
    if (loaded.has(name)) return;
    loaded.add(name);
    const given = imports.get(name);
    if (given) {
      const parsed = protobuf.parse(given.text, root, options);
      for (const dep of [...(parsed.imports ?? []), ...(parsed.weakImports ?? [])]) load(dep);
      return;
    }
    const bundled = protobuf.common.get(name) as Json | null;
    if (!bundled?.nested)
      throw new ParityError('PARITY_BAD_INPUT', `import "${name}" is neither a given reference nor a bundled well-known type`);
    root.addJSON(bundled.nested);
  };
  for (const dep of [...(main.imports ?? []), ...(main.weakImports ?? [])]) load(dep);
  protobuf.parse(text, root, options);
  root.resolveAll();

  const path = (indexes: readonly number[]): string[] => {
    const names: string[] = [];
    let scope: Json | undefined = own;
    for (const i of indexes) {
      const entry = messagesOf(scope)[i];
      if (!entry) throw new ParityError('PARITY_DECODE', `message indexes [${indexes.join(', ')}] point at no message of the schema`);
      names.push(entry[0]);
      scope = entry[1];
    }
    if (names.length === 0) throw new ParityError('PARITY_DECODE', 'empty message-index path');
    return names;
  };
  return {
    root,
    typeAt(indexes) {
      return root.lookupType([pkg, ...path(indexes)].filter(Boolean).join('.'));
    },
    localNameAt(indexes) {
      return path(indexes).join('.');
    },
    indexesOf(localName) {
      const out: number[] = [];
      let scope: Json | undefined = own;
      for (const part of localName.split('.')) {
        const i = messagesOf(scope).findIndex(([n]) => n === part);
        if (i < 0) return undefined;
        out.push(i);
        scope = messagesOf(scope)[i]?.[1];
      }
      return out;
    },
  };
}
