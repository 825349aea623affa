import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { NODE_FLAGS } from '../../../services/cli/node-flags.js';

const ROOT = join(import.meta.dirname, '../../..');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

/** Every `command:` of every container in a Kubernetes manifest (Deployments and Jobs). */
function k8sCommands(text: string): string[][] {
  const commands: string[][] = [];
  for (const doc of parseAllDocuments(text)) {
    const containers = doc.toJS()?.spec?.template?.spec?.containers ?? [];
    for (const container of containers) if (container.command) commands.push(container.command);
  }
  return commands;
}

describe('every way parity is launched carries the same V8 flags', () => {
  test('NODE_FLAGS is not empty and each is a V8/Node flag', () => {
    expect(NODE_FLAGS.length).toBeGreaterThan(0);
    for (const flag of NODE_FLAGS) expect(flag).toMatch(/^--[a-z-]+=\S+$/);
  });

  test("the bin's shebang", () => {
    const shebang = read('services/cli/bin/parity.js').split('\n')[0];
    expect(shebang).toBe(`#!/usr/bin/env -S node ${NODE_FLAGS.join(' ')}`);
  });

  test('npm run parity', () => {
    const script = JSON.parse(read('package.json')).scripts.parity as string;
    expect(script).toContain(`node ${NODE_FLAGS.join(' ')} services/cli/bin/parity.js`);
  });

  test("the Docker image's entrypoint", () => {
    const entrypoint = read('deploy/docker/Dockerfile')
      .split('\n')
      .find((line) => line.startsWith('ENTRYPOINT'));
    expect(JSON.parse(entrypoint!.slice('ENTRYPOINT'.length))).toEqual(['node', ...NODE_FLAGS, 'services/cli/bin/parity.js']);
  });

  test('every Kubernetes container that runs parity', () => {
    const dir = join(ROOT, 'deploy/k8s');
    let seen = 0;
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.yaml'))) {
      for (const command of k8sCommands(read(join('deploy/k8s', file)))) {
        if (!command.some((word) => word.includes('services/cli'))) continue;
        seen++;
        expect(command, file).toEqual(['node', ...NODE_FLAGS, 'dist/services/cli/main.js']);
      }
    }
    expect(seen).toBeGreaterThanOrEqual(5);
  });
});
