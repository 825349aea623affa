import type { CommandEntry, CommandHandler } from './command.js';
import type { CoordinatorCommand } from '../coordinator/cli.js';

/** Loads `exportName` from a service's cli module. */
function from(modulePath: string, exportName: string): () => Promise<CommandHandler> {
  return async () => {
    const mod = (await import(modulePath)) as Record<string, CommandHandler>;
    const handler = mod[exportName];
    if (!handler) throw new Error(`${modulePath} does not export ${exportName}`);
    return handler;
  };
}

/**
 * Loads a coordinator command and hands it the contract gate: the CLI is the one layer that depends
 * on both the coordinator and the reconciler, so the gate is injected here.
 */
function coordinator(exportName: string): () => Promise<CommandHandler> {
  return async () => {
    const [mod, { reconcilerContractGate }] = await Promise.all([import('../coordinator/cli.js'), import('./contract-gate.js')]);
    const handler = (mod as unknown as Record<string, CoordinatorCommand>)[exportName];
    if (!handler) throw new Error(`../coordinator/cli.js does not export ${exportName}`);
    return (argv) => handler(argv, { contractGate: reconcilerContractGate });
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
  { name: 'compat gate', summary: 'run every event-schema check of a spec (registry, consumers, live events, semantic changes); exit 0 only if all pass', load: from('../compat-gate/cli.js', 'compatGate') },
  { name: 'serve', summary: 'serve the live status page (phase, gates, flags, CDC lag, trends, audit) on 127.0.0.1', load: from('../status/cli.js', 'serveCommand') },
  { name: 'cache run', summary: 'keep versioned Redis cache entries fresh from the change events (set if newer, tombstones, dual-populate)', load: from('../cache-versioner/cli.js', 'cacheRunCommand') },
  { name: 'cache cutover', summary: 'switch the cache version read and populated (atomic, audited); reports old keys remaining', load: from('../cache-versioner/cli.js', 'cacheCutoverCommand') },
  { name: 'cache inspect', summary: 'compare sampled cache entries with the database; report stale entries and record evidence', load: from('../cache-versioner/cli.js', 'cacheInspectCommand') },
  { name: 'migrate status', summary: 'show the migration phase per cohort, each gate with its live values, flags and recent transitions', load: coordinator('migrateStatusCommand') },
  { name: 'migrate advance', summary: 'move a migration (or cohort) to the next phase when its gate passes; prints why not otherwise', load: coordinator('migrateAdvanceCommand') },
  { name: 'migrate rollback', summary: 'move a migration (or cohort) back a phase: routing and flags only, never data; audited', load: coordinator('migrateRollbackCommand') },
  { name: 'flags get', summary: 'show the migration flags (dual-write, read path and ramp, kill switches) and recent changes', load: coordinator('flagsGetCommand') },
  { name: 'flags set', summary: 'set flags NAME=VALUE with a reason; audited; refuses routing ahead of the phase unless --force', load: coordinator('flagsSetCommand') },
  { name: 'lint', summary: 'flag risky DDL in the spec (locks, rewrites, drops before contract), each with the safe alternative', load: from('../coordinator/cli.js', 'lintCommand') },
  { name: 'expand', summary: 'run the spec\'s expand DDL under the lock with lock_timeout, retries and concurrent index builds', load: coordinator('expandCommand') },
  { name: 'enforce', summary: 'run the spec\'s enforce DDL (constraints NOT VALID then VALIDATE, SET NOT NULL) under the lock', load: coordinator('enforceCommand') },
  { name: 'contract', summary: 'run the spec\'s contract DDL once the contract gate passes and the operator confirms (--yes)', load: coordinator('contractCommand') },
  { name: 'backfill run', summary: 'fill the new representation in checkpointed, throttled key-range batches; resumes a stopped run', load: from('../backfill/cli.js', 'backfillRunCommand') },
  { name: 'backfill ctl', summary: 'pause | resume | abort | set batch-size=N | set max-lag=S for a running backfill (all its processes)', load: from('../backfill/cli.js', 'backfillCtlCommand') },
  { name: 'backfill status', summary: 'show the latest backfill run: progress, ranges, throttle state and reason per process, evidence', load: from('../backfill/cli.js', 'backfillStatusCommand') },
  { name: 'cdc run', summary: 'stream the spec\'s tables from PostgreSQL into Kafka (slot, publication, initial snapshot, no-loss acks)', load: from('../cdc/cli.js', 'cdcRun') },
  { name: 'cdc status', summary: 'show the CDC slot: lag bytes and seconds, state, connector report, snapshots', load: from('../cdc/cli.js', 'cdcStatusCommand') },
  { name: 'cdc drop-slot', summary: 'drop the CDC replication slot and publication (refuses an active slot unless --force)', load: from('../cdc/cli.js', 'cdcDropSlot') },
  { name: 'cdc snapshot', summary: 're-snapshot one table while streaming continues (DBLog watermarks, run by parity cdc run)', load: from('../cdc/cli.js', 'cdcSnapshot') },
  { name: 'verify', summary: 'batch-verify old vs new representation (segment checksums, bisection, exact diffs); resumable, shareable; --repair', load: from('../reconciler/cli.js', 'verifyCommand') },
  { name: 'reconcile', summary: 'stream-verify every change event against the new representation; publish mismatches; --repair', load: from('../reconciler/cli.js', 'reconcileCommand') },
  { name: 'report', summary: 'the latest verification as json, md or html (drift charts inline): rows, drift, in flight, repairs, verdict', load: from('../reconciler/cli.js', 'reportCommand') },
  { name: 'gate contract', summary: 'exit 0 only when every contract criterion of the spec holds; prints each with its measured value', load: from('../reconciler/cli.js', 'gateContractCommand') },
  { name: 'demo', summary: 'run the orders migration end to end on the local stack (--quick for CI); exits 0 only if the end state is exact', load: from('../demo/cli.js', 'demoCommand') },
];
