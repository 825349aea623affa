#!/usr/bin/env -S node --max-semi-space-size=16
// Entry point of the `parity` CLI: runs the compiled JavaScript in dist/ (built by `npm run build`,
// which `npm ci` runs through the prepare script). Plain JavaScript, so it starts without a compiler.
// The shebang's V8 flags are services/cli/node-flags.ts's NODE_FLAGS (run as `node <flags> services/cli/bin/parity.js`).
import { existsSync } from 'node:fs';

const major = Number(process.versions.node.split('.')[0]);
const entry = new URL('../../../dist/services/cli/main.js', import.meta.url);

if (major < 22) {
  process.stderr.write(
    `parity: Node ${process.versions.node} is too old; parity needs Node >= 22 (24 LTS).\n` +
      '  hint: run it through npm (`npm run parity -- <command>`), which fetches Node 24 into .parity/runtime when needed\n',
  );
  process.exitCode = 2;
} else if (!existsSync(entry)) {
  process.stderr.write(
    'parity: the compiled CLI (dist/services/cli/main.js) is missing.\n  hint: run `npm run build` (npm ci runs it too)\n',
  );
  process.exitCode = 2;
} else {
  const { run } = await import(entry.href);
  await run(process.argv.slice(2));
}
