/**
 * Consistent percentage routing of reads: defined with the flags it reads, in
 * services/coordinator/routing.ts; the client package re-exports it.
 */
export * from '../coordinator/routing.js';
