import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { findProjectRoot, projectPath, projectRoot } from '../../../services/core/project-root.js';

describe('the project root', () => {
  test('is the nearest folder with a package.json, from the sources and from dist/ alike', () => {
    const dir = mkdtempSync(join(tmpdir(), 'parity-root-'));
    try {
      writeFileSync(join(dir, 'package.json'), '{}');
      mkdirSync(join(dir, 'services', 'core'), { recursive: true });
      mkdirSync(join(dir, 'dist', 'services', 'core'), { recursive: true });
      expect(findProjectRoot(join(dir, 'services', 'core'))).toBe(dir);
      expect(findProjectRoot(join(dir, 'dist', 'services', 'core'))).toBe(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('is this checkout for the running code', () => {
    expect(projectRoot()).toBe(fileURLToPath(new URL('../../..', import.meta.url)).replace(/\/$/, ''));
    expect(projectPath('package.json')).toBe(join(projectRoot(), 'package.json'));
  });

  test('fails with a clear message when there is no package.json above', () => {
    expect(() => findProjectRoot('/')).toThrow(/no package.json at or above \//);
  });
});
