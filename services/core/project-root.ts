/**
 * Finds parity's project root (the folder holding its package.json) from a module's own location.
 * The same module runs from its TypeScript source (`services/x/y.ts` under vitest or tsx) and from the
 * compiled output (`dist/services/x/y.js`), which sit at different depths: walking up to package.json
 * gives one answer for both, where a fixed `../..` would be right for only one of them.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

/**
 * The nearest folder at or above `start` (default: this module's folder) that contains package.json.
 * Throws when there is none, which means the code was copied away from its package.
 */
export function findProjectRoot(start: string = dirname(fileURLToPath(import.meta.url))): string {
  let dir = start;
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json at or above ${start}: parity's files must stay inside its package`);
    dir = parent;
  }
}

/** parity's project root, computed once. */
export function projectRoot(): string {
  cached ??= findProjectRoot();
  return cached;
}

/** A path inside the project root, e.g. `projectPath('schemas', 'examples')`. */
export function projectPath(...parts: string[]): string {
  return join(projectRoot(), ...parts);
}
