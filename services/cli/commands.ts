import type { CommandEntry, CommandHandler } from './command.js';

/** Loads `exportName` from a service's cli module. */
function from(modulePath: string, exportName: string): () => Promise<CommandHandler> {
  return async () => {
    const mod = (await import(modulePath)) as Record<string, CommandHandler>;
    const handler = mod[exportName];
    if (!handler) throw new Error(`${modulePath} does not export ${exportName}`);
    return handler;
  };
}

/** Every `parity` subcommand, in the order `parity --help` lists them. */
export const COMMANDS: CommandEntry[] = [
  { name: 'stack up', summary: 'start the local stack (PostgreSQL x2, Kafka, Apicurio, Redis), fetching what is missing', load: from('../stack/cli.js', 'stackUpCommand') },
  { name: 'stack down', summary: 'stop exactly the local stack processes parity started, by PID', load: from('../stack/cli.js', 'stackDownCommand') },
  { name: 'stack status', summary: 'show each local service: running or not, PID, port, RSS', load: from('../stack/cli.js', 'stackStatusCommand') },
  { name: 'stack env', summary: 'print the local stack connection settings as export lines', load: from('../stack/cli.js', 'stackEnvCommand') },
  { name: 'spec validate', summary: 'validate a migration spec; prints ok or every problem with its path and a hint', load: from('../core/spec-cli.js', 'specValidate') },
  { name: 'spec json-schema', summary: 'write the JSON Schema generated from the spec schema', load: from('../core/spec-cli.js', 'specJsonSchemaCommand') },
  { name: 'compat check', summary: 'check a schema against previous versions under a compatibility level (Confluent semantics, no registry needed)', load: from('../compat-gate/cli.js', 'compatCheck') },
  { name: 'serve', summary: 'serve the live status page (phase, gates, flags, CDC lag, trends, audit) on 127.0.0.1', load: from('../status/cli.js', 'serveCommand') },
];
