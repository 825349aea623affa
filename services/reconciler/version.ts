/** parity's version, from package.json, for reports and evidence. */
import { readFileSync } from 'node:fs';
import { projectPath } from '../core/project-root.js';

function readVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(projectPath('package.json'), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

export const TOOL_VERSION = readVersion();
