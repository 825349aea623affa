// `npm run build`: compiles services/ and connectors/ to JavaScript in dist/ (tsconfig.build.json) and
// copies the runtime assets the compiled modules read next to themselves: every services/*/lua folder
// (Redis scripts, loaded relative to their module). Files the code reads from the project root
// (package.json, schemas/examples, deploy/local) are found through services/core/project-root.ts.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
// Built beside dist/ and swapped in at the end: a clean output (a module deleted from the sources does
// not survive), and a CLI started while the build runs never sees a half-written dist/.
const next = join(root, `dist.building-${process.pid}`);
const old = join(root, `dist.old-${process.pid}`);

const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
if (!existsSync(tsc)) {
  // `npm ci --omit=dev` (a production install) runs prepare without the compiler: keep the dist/
  // that is there. Anywhere else a missing compiler is an error.
  if (process.env.npm_lifecycle_event === 'prepare' && existsSync(join(dist, 'services', 'cli', 'main.js'))) {
    process.stderr.write('[build] typescript is not installed (production install): keeping the existing dist/\n');
    process.exit(0);
  }
  process.stderr.write('[build] typescript is not installed: run npm ci (with the dev dependencies) to build dist/\n');
  process.exit(1);
}
const result = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', next], { stdio: 'inherit' });
// tsc exits 2 when it found type errors but still wrote every file, 1 when it wrote nothing.
const emitted = result.status === 0 || result.status === 2;
if (!emitted) {
  rmSync(next, { recursive: true, force: true });
  process.stderr.write(`[build] tsc failed (exit ${result.status ?? result.signal}); dist/ left as it was\n`);
  process.exit(1);
}

let copied = 0;
for (const group of ['services', 'connectors']) {
  const base = join(root, group);
  if (!existsSync(base)) continue;
  for (const entry of readdirSync(base, { withFileTypes: true })) {
    const lua = join(base, entry.name, 'lua');
    if (entry.isDirectory() && existsSync(lua)) {
      cpSync(lua, join(next, group, entry.name, 'lua'), { recursive: true });
      copied++;
    }
  }
}
if (existsSync(dist)) renameSync(dist, old);
renameSync(next, dist);
rmSync(old, { recursive: true, force: true });
if (result.status !== 0) {
  // The JavaScript is there (the CLI runs). `npm run build` fails on type errors; the prepare script
  // (npm ci, and npx's first run of the local bin) only warns: a failed prepare aborts the install and
  // leaves npx's cache entry for this package broken until it is deleted by hand.
  const strict = process.env.npm_lifecycle_event !== 'prepare';
  process.stderr.write(`[build] dist/ written, but tsc reported type errors (above)${strict ? ': the build fails' : ' (npm run typecheck)'}\n`);
  if (strict) process.exit(1);
} else {
  process.stderr.write(`[build] dist/ compiled; ${copied} lua folder(s) copied\n`);
}
