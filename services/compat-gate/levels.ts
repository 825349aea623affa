import { ParityError } from '../core/errors.js';
import { COMPATIBILITY_LEVELS, type CompatibilityLevel } from '../core/spec.js';

// The spec's level names are Confluent Schema Registry's, as its REST API spells them; one list for both.
export { COMPATIBILITY_LEVELS, type CompatibilityLevel };

/**
 * backward: the new schema reads data written with a previous one (consumers upgrade first).
 * forward: a previous schema reads data written with the new one (producers upgrade first).
 */
export type Direction = 'backward' | 'forward';

export interface LevelPlan {
  directions: Direction[];
  /** true: every previous version; false: only the latest. */
  transitive: boolean;
}

const PLANS: Record<CompatibilityLevel, LevelPlan> = {
  BACKWARD: { directions: ['backward'], transitive: false },
  BACKWARD_TRANSITIVE: { directions: ['backward'], transitive: true },
  FORWARD: { directions: ['forward'], transitive: false },
  FORWARD_TRANSITIVE: { directions: ['forward'], transitive: true },
  FULL: { directions: ['backward', 'forward'], transitive: false },
  FULL_TRANSITIVE: { directions: ['backward', 'forward'], transitive: true },
  NONE: { directions: [], transitive: false },
};

/** What a level checks: which directions, against which previous versions. */
export function planFor(level: CompatibilityLevel): LevelPlan {
  return PLANS[level];
}

/** Whether a string is exactly one of the level names (upper case). */
export function isCompatibilityLevel(value: string): value is CompatibilityLevel {
  return (COMPATIBILITY_LEVELS as readonly string[]).includes(value);
}

/** Parses a level name (case-insensitive); an unknown one is bad input that lists the valid names. */
export function parseLevel(value: string): CompatibilityLevel {
  const upper = value.trim().toUpperCase();
  if (isCompatibilityLevel(upper)) return upper;
  throw new ParityError('PARITY_BAD_INPUT', `unknown compatibility level "${value}"`, {
    hint: `use one of ${COMPATIBILITY_LEVELS.join(', ')}`,
  });
}

/**
 * The previous versions a level compares against, given all of them oldest first: all for the
 * transitive levels, the latest only otherwise (Confluent's semantics), with their 0-based positions.
 */
export function versionsToCheck<T>(level: CompatibilityLevel, previousOldestFirst: readonly T[]): { index: number; value: T }[] {
  const all = previousOldestFirst.map((value, index) => ({ index, value }));
  if (planFor(level).directions.length === 0) return [];
  return planFor(level).transitive ? all : all.slice(-1);
}
