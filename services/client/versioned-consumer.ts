/**
 * A consumer-side decoder that turns every version of an event into the newest shape: the record
 * decoded by the schema registry is upgraded one version at a time by the application's upgrade
 * functions, then fields still missing get their defaults. The version of a message comes from its
 * schema id (Confluent wire format: magic byte 0, 4-byte id), looked up among the subject's
 * registered versions.
 */
import type { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import { ParityError } from '../core/errors.js';

/** Upgrade functions: `upgrades[v]` turns a version-v record into a version-(v+1) record. */
export type Upgrades = Record<number, (record: Record<string, unknown>) => Record<string, unknown>>;

export interface VersionedDecoderOptions<Latest extends Record<string, unknown>> {
  /** The newest version number (the shape the application works with). */
  latest: number;
  upgrades: Upgrades;
  /** Values for fields still missing (undefined) after upgrading. */
  defaults?: Partial<Latest>;
  /** Also replace null by the default (e.g. an optional Avro field written as null). Default false. */
  nullIsMissing?: boolean;
}

export interface VersionedDecoder<Latest> {
  /** Upgrades a decoded record of `version` to the newest shape. */
  upgrade(record: unknown, version: number): Latest;
}

export function createVersionedDecoder<Latest extends Record<string, unknown>>(
  options: VersionedDecoderOptions<Latest>,
): VersionedDecoder<Latest> {
  for (let v = 1; v < options.latest; v++) {
    if (typeof options.upgrades[v] !== 'function') {
      throw new ParityError('PARITY_BAD_INPUT', `no upgrade function from version ${v} to ${v + 1}`, {
        hint: `pass upgrades[${v}] = (record) => ({ ...record, <fields added in v${v + 1}> })`,
      });
    }
  }
  return {
    upgrade(record, version) {
      if (!Number.isInteger(version) || version < 1 || version > options.latest) {
        throw new ParityError('PARITY_DECODE', `event version ${version} is not between 1 and ${options.latest}`, {
          hint: 'a producer wrote a version newer than this consumer knows; upgrade the consumer',
        });
      }
      if (record === null || typeof record !== 'object' || Array.isArray(record)) {
        throw new ParityError('PARITY_DECODE', `a version ${version} event is not a record`);
      }
      // Upgrades get a copy: the caller's decoded record is never changed.
      let current: Record<string, unknown> = { ...(record as Record<string, unknown>) };
      for (let v = version; v < options.latest; v++) current = (options.upgrades[v] as Upgrades[number])(current);
      for (const [field, value] of Object.entries(options.defaults ?? {})) {
        if (current[field] === undefined || (options.nullIsMissing && current[field] === null)) current[field] = value;
      }
      return current as Latest;
    },
  };
}

/** The schema id of a Confluent wire-format message. */
export function schemaIdOf(message: Buffer): number {
  if (message.length < 5 || message[0] !== 0)
    throw new ParityError('PARITY_DECODE', 'the message is not in the Confluent wire format (magic byte 0 + schema id)');
  return message.readInt32BE(1);
}

export interface VersionedConsumerOptions<Latest extends Record<string, unknown>> extends VersionedDecoderOptions<Latest> {
  registry: SchemaRegistry;
  /** The subject whose versions 1..latest the events use, e.g. shop.public.orders-value. */
  subject: string;
}

export interface VersionedConsumer<Latest> {
  /** Decodes a message value through the registry and upgrades it to the newest shape. */
  decode(message: Buffer): Promise<{ version: number; record: Latest }>;
}

/** Builds the decoder, resolving the schema id of each version of the subject once. */
export async function createVersionedConsumer<Latest extends Record<string, unknown>>(
  options: VersionedConsumerOptions<Latest>,
): Promise<VersionedConsumer<Latest>> {
  const decoder = createVersionedDecoder<Latest>(options);
  const versionOfId = new Map<number, number>();
  async function resolve(): Promise<void> {
    for (let v = 1; v <= options.latest; v++) {
      if ([...versionOfId.values()].includes(v)) continue;
      try {
        versionOfId.set(await options.registry.getRegistryId(options.subject, v), v);
      } catch {
        // A version not registered yet (the producer has not moved on): resolved again when seen.
      }
    }
  }
  await resolve();
  return {
    async decode(message) {
      const id = schemaIdOf(message);
      if (!versionOfId.has(id)) await resolve();
      const version = versionOfId.get(id);
      if (version === undefined) {
        throw new ParityError('PARITY_DECODE', `schema id ${id} is not one of versions 1..${options.latest} of ${options.subject}`, {
          hint: 'the event uses a schema this consumer does not know; upgrade the consumer',
        });
      }
      const record = (await options.registry.decode(message)) as unknown;
      return { version, record: decoder.upgrade(record, version) };
    },
  };
}
