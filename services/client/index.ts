/**
 * The parity application client: what an application imports to take part in a migration.
 *
 * - flags: the migration's flags with local caching and fast invalidation;
 * - routing: the consistent-hash percentage ramp;
 * - writes routed by the `write` flag (old, plus new while dual-writing; or new only after cutover),
 *   a failed authoritative write skipping the other;
 * - dark reads (Scientist style: return old, compare new, publish mismatches);
 * - a versioned event consumer (every event version into the newest shape);
 * - the versioned cache reader (cache-reader.ts, written with the cache versioner).
 *
 * The flags reader and routing live in services/coordinator (with the flag model and store), the cache
 * reader in services/cache-versioner; this package re-exports them (flags.ts, routing.ts,
 * cache-reader.ts), so applications import one package.
 */
export { createFlagsReader, type FlagsReader, type FlagsReaderOptions } from './flags.js';
export { routeRead, inRamp, bucketOf, murmur3, type RoutingKey } from './routing.js';
export { createDualWriter, type DualWriter, type DualWriterOptions, type DualWriteOps } from './dual-write.js';
export { routeWrite, type WritePlan, type WriteSide } from './write-routing.js';
export {
  createDarkReader,
  mismatchTopic,
  type DarkReader,
  type DarkReaderOptions,
  type MismatchMessage,
  type ReadPaths,
} from './dark-read.js';
export {
  createVersionedDecoder,
  createVersionedConsumer,
  schemaIdOf,
  type Upgrades,
  type VersionedDecoder,
  type VersionedDecoderOptions,
  type VersionedConsumer,
  type VersionedConsumerOptions,
} from './versioned-consumer.js';
export {
  createCacheReader,
  tableFill,
  type CacheReader,
  type CacheReaderOptions,
  type CacheRead,
  type FillFunction,
} from './cache-reader.js';
export { DEFAULT_FLAGS, type Flags, type ReadPath, type WritePath } from '../coordinator/flag-model.js';
export { coordinatorKeys, DEFAULT_KEY_PREFIX } from '../coordinator/keys.js';
