#!/usr/bin/env node
// Entry point of the `parity` CLI: runs the TypeScript sources through tsx, so one checkout runs as is.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../main.ts');
const code = await main(process.argv.slice(2));
// Long-running commands resolve only when they stop; exit now so no lingering client handle keeps us up.
process.exit(code);
