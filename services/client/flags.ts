/**
 * Flags for applications: the reader lives with the flag model and store it reads, in
 * services/coordinator/flags-reader.ts; the client package re-exports it.
 */
export * from '../coordinator/flags-reader.js';
