/**
 * The versioned cache reader: it lives with the cache versioner whose entries, keys and scripts it
 * shares (services/cache-versioner/cache-reader.ts); the client package re-exports it.
 */
export * from '../cache-versioner/cache-reader.js';
