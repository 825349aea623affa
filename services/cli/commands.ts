import type { CommandEntry, CommandHandler, OptionHelp } from './command.js';
import type { CoordinatorCommand } from '../coordinator/cli.js';
import type { ReverseCommand } from '../reverse-sync/cli.js';

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
    const [mod, { reconcilerContractGate }, { reverseWindowCloser }] = await Promise.all([
      import('../coordinator/cli.js'),
      import('./contract-gate.js'),
      import('../reverse-sync/close.js'),
    ]);
    const handler = (mod as unknown as Record<string, CoordinatorCommand>)[exportName];
    if (!handler) throw new Error(`../coordinator/cli.js does not export ${exportName}`);
    return (argv) => handler(argv, { contractGate: reconcilerContractGate, closeReverseWindow: reverseWindowCloser });
  };
}

/**
 * Loads a reverse-sync command and hands it reverse verification (the reconciler's verify, sides
 * swapped): reverse sync does not import the reconciler, the CLI wires them.
 */
function reverse(exportName: string): () => Promise<CommandHandler> {
  return async () => {
    const [mod, { reconcilerVerifyReverse, reconcilerStreamCheckReverse }] = await Promise.all([
      import('../reverse-sync/cli.js'),
      import('./reverse-verify.js'),
    ]);
    const handler = (mod as unknown as Record<string, ReverseCommand>)[exportName];
    if (!handler) throw new Error(`../reverse-sync/cli.js does not export ${exportName}`);
    return (argv) => handler(argv, { verifyReverse: reconcilerVerifyReverse, streamCheckReverse: reconcilerStreamCheckReverse });
  };
}

// Options shared by many commands, written once so their wording stays the same everywhere.
const SPEC: OptionHelp = { flag: '--spec FILE', help: 'the migration spec (YAML)', required: true };
const JSON_OUT: OptionHelp = { flag: '--json', help: 'print JSON instead of text' };
const STATUS_PORT: OptionHelp = {
  flag: '--status-port PORT',
  help: 'port of the status server (/metrics, /livez, /readyz, /healthz); wins over PARITY_STATUS_PORT and the spec',
};
const COHORT: OptionHelp = { flag: '--cohort C', help: 'act on one cohort of the spec (default: the whole migration)' };
const REASON: OptionHelp = { flag: '--reason TEXT', help: 'why, recorded in the audit log', required: true };
const ACTOR: OptionHelp = { flag: '--actor NAME', help: 'who is acting, for the audit log (default: $PARITY_ACTOR, then $USER)' };
const FENCE: OptionHelp = {
  flag: '--fence-token N',
  help: 'a fencing token from the coordinator (default: take a new one, fencing out the previous holder)',
};
const GROUP = (what: string): OptionHelp => ({
  flag: '--group ID',
  help: `Kafka consumer group (default ${what}); processes with one group share the partitions`,
});
const FROM_LATEST: OptionHelp = {
  flag: '--from-latest',
  help: 'a new consumer group starts at the end of the topic (default: from the beginning)',
};
const SERVICES = 'pg-source|pg-target|kafka|registry|redis';

function ddlEntry(phase: 'expand' | 'enforce' | 'contract', summary: string, load: () => Promise<CommandHandler>): CommandEntry {
  return {
    name: phase,
    summary,
    options: [
      SPEC,
      { flag: '--dry-run', help: 'print the statements that would run, run nothing' },
      { flag: '--reason TEXT', help: 'why, recorded in the audit log' },
      ACTOR,
      ...(phase === 'contract'
        ? [{ flag: '--yes', help: 'confirm without a prompt (automation, once the contract gate report was reviewed)' }]
        : []),
      JSON_OUT,
    ],
    examples:
      phase === 'contract'
        ? ['parity contract --spec orders.yaml --dry-run', 'parity contract --spec orders.yaml --yes --reason "gate report reviewed"']
        : [`parity ${phase} --spec orders.yaml --dry-run`, `parity ${phase} --spec orders.yaml --reason "release 42"`],
    no:
      phase === 'contract'
        ? 'the contract gate or the phase refused, or the operator did not confirm; nothing was dropped'
        : 'the phase does not allow it yet; nothing was run',
    load,
  };
}

/** Every `parity` subcommand, in the order `parity --help` lists them. */
export const COMMANDS: CommandEntry[] = [
  {
    name: 'stack up',
    summary: 'start the local stack (PostgreSQL x2, Kafka, Apicurio, Redis), fetching what is missing',
    args: `[${SERVICES} ...]`,
    options: [
      { flag: '--json', help: "print each service's state as JSON (default: export lines for the shell)" },
      { flag: '--brokers 1|3', help: 'Kafka brokers in the KRaft cluster (default 1; fixed for a state directory once formatted)' },
      { flag: '--with-replica', help: 'also start a streaming replica of pg-source (default: PARITY_STACK_REPLICA=1)' },
      {
        flag: '--with-connect',
        help: "also start a Kafka Connect worker with Debezium's PostgreSQL source and JDBC sink (default: PARITY_STACK_CONNECT=1; not with --secure)",
      },
      {
        flag: '--secure',
        help: 'the secured stack (TLS and passwords everywhere, own state dir .parity-secure and ports +100); also PARITY_STACK_SECURE=1',
      },
    ],
    examples: [
      'eval "$(parity stack up)"',
      'parity stack up redis kafka --json',
      'PARITY_STATE_DIR=.parity-3 parity stack up --brokers 3',
      'eval "$(parity stack up --secure)"',
    ],
    load: from('../stack/cli.js', 'stackUpCommand'),
  },
  {
    name: 'stack down',
    summary: 'stop exactly the local stack processes parity started, by PID',
    args: `[${SERVICES} ...]`,
    options: [
      {
        flag: '--secure',
        help: 'the secured stack (TLS and passwords everywhere, own state dir .parity-secure and ports +100); also PARITY_STACK_SECURE=1',
      },
      { flag: '--json', help: 'print {stopped: [service, ...]}' },
    ],
    examples: ['parity stack down', 'parity stack down kafka', 'parity stack down --secure --json'],
    load: from('../stack/cli.js', 'stackDownCommand'),
  },
  {
    name: 'stack status',
    summary: 'show each local service: running or not, version, PID, port, RSS (and each Kafka node)',
    options: [
      JSON_OUT,
      {
        flag: '--secure',
        help: 'the secured stack (TLS and passwords everywhere, own state dir .parity-secure and ports +100); also PARITY_STACK_SECURE=1',
      },
    ],
    examples: ['parity stack status --json', 'parity stack status --secure'],
    no: 'a service of the local stack is not running',
    load: from('../stack/cli.js', 'stackStatusCommand'),
  },
  {
    name: 'stack env',
    summary: 'print the local stack connection settings as export lines',
    options: [
      {
        flag: '--secure',
        help: 'the secured stack (TLS and passwords everywhere, own state dir .parity-secure and ports +100); also PARITY_STACK_SECURE=1',
      },
      { flag: '--json', help: 'print the same settings as one JSON object (name: value)' },
    ],
    examples: ['eval "$(parity stack env)"', 'eval "$(parity stack env --secure)"', 'parity stack env --json'],
    load: from('../stack/cli.js', 'stackEnvCommand'),
  },
  {
    name: 'spec validate',
    summary: 'validate a migration spec; prints ok or every problem with its path and a hint',
    args: 'FILE',
    options: [
      { flag: '--spec FILE', help: 'the spec, instead of the FILE argument' },
      { flag: '--offline', help: 'check the structure only: ${VAR}s are not resolved and need not be set (CI without secrets)' },
      {
        flag: '--json',
        help: 'print {ok, file, offline, name} or {ok: false, file, offline, code, problems: [{path, line, message, hint}]}',
      },
    ],
    examples: ['parity spec validate orders.yaml', 'parity spec validate --offline --json orders.yaml'],
    load: from('./spec-cli.js', 'specValidate'),
  },
  {
    name: 'spec json-schema',
    summary: 'write the JSON Schema generated from the spec schema',
    options: [{ flag: '--out FILE', help: 'write it to FILE (default: stdout)' }],
    examples: ['parity spec json-schema --out schemas/migration-spec.schema.json'],
    load: from('./spec-cli.js', 'specJsonSchemaCommand'),
  },
  {
    name: 'spec check-roundtrip',
    summary: 'check on sampled source rows that the reverse mapping rebuilds each row from its mapping: reverse(mapping(row)) = row',
    options: [
      SPEC,
      { flag: '--sample N', help: 'rows to check (default 10000; a larger table is sampled with TABLESAMPLE BERNOULLI)' },
      JSON_OUT,
    ],
    examples: ['parity spec check-roundtrip --spec orders.yaml', 'parity spec check-roundtrip --spec orders.yaml --sample 50000 --json'],
    no: 'the round trip is not the identity on some representable row; those rows are listed (key and columns, no secret-looking values)',
    load: from('../reconciler/roundtrip-cli.js', 'specCheckRoundtripCommand'),
  },
  {
    name: 'compat check',
    summary: 'check a schema against previous versions under a compatibility level (Confluent semantics, no registry needed)',
    options: [
      { flag: '--type avro|json|protobuf', help: 'the schema language', required: true },
      {
        flag: '--level LEVEL',
        help: 'BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE or NONE',
        required: true,
      },
      { flag: '--schema NEW_FILE', help: 'the new schema', required: true },
      { flag: '--previous OLD_FILE', help: 'a registered version, oldest first; repeat the option' },
      { flag: '--policy strict|lenient', help: "JSON Schema only: Confluent's STRICT (default) or LENIENT rules" },
      { flag: '--reference IMPORT=FILE', help: 'Protobuf only: the file an import names, as the schema writes it; repeat the option' },
      { flag: '--json', help: 'the result is one JSON line {compatible, messages, ...} already; accepted like on every reporting command' },
    ],
    examples: ['parity compat check --type avro --level BACKWARD --schema v3.avsc --previous v1.avsc --previous v2.avsc'],
    no: 'the schema is not compatible (the messages say why)',
    load: from('../compat-gate/cli.js', 'compatCheck'),
  },
  {
    name: 'compat gate',
    summary: 'run every event-schema check of a spec (registry, consumers, live events, semantic changes); exit 0 only if all pass',
    options: [
      SPEC,
      { flag: '--skip-live', help: 'do not sample the topics' },
      { flag: '--skip-evidence', help: 'do not record the result for the contract gate' },
      { flag: '--sample N', help: 'events sampled per partition (default 500)' },
      { flag: '--timeout-ms MS', help: 'how long sampling may take (default 30000)' },
      JSON_OUT,
      { flag: '--out REPORT.json', help: 'also write the JSON report to a file' },
    ],
    examples: ['parity compat gate --spec orders.yaml --json --out compat.json'],
    no: 'a check failed (printed in the table)',
    load: from('../compat-gate/cli.js', 'compatGate'),
  },
  {
    name: 'serve',
    summary: 'serve the live status page (phase, gates, flags, CDC lag, trends, audit) on 127.0.0.1',
    options: [
      SPEC,
      { flag: '--host ADDRESS', help: 'address to bind (wins over PARITY_STATUS_HOST; default 127.0.0.1)' },
      STATUS_PORT,
      { flag: '--port PORT', help: 'the same as --status-port' },
      { flag: '--refresh SECONDS', help: 'how often the page reloads (default 5)' },
    ],
    examples: ['parity serve --spec orders.yaml --status-port 9400'],
    load: async () => {
      // The status page shows the cutover window through reverse sync's tables: the CLI wires it in.
      const [{ serveCommand }, { reverseWindowReader }] = await Promise.all([
        import('../status/cli.js'),
        import('./reverse-window-status.js'),
      ]);
      return (argv) => serveCommand(argv, { reverseWindow: reverseWindowReader });
    },
  },
  {
    name: 'cache run',
    summary: 'keep versioned Redis cache entries fresh from the change events (set if newer, tombstones, dual-populate)',
    options: [
      SPEC,
      GROUP('parity-cache-<name>'),
      { flag: '--topic TOPIC', help: 'the topic to follow instead of the one derived from the spec' },
      FROM_LATEST,
      { flag: '--concurrency N', help: 'partitions processed in parallel (default cdc.partitions)' },
      STATUS_PORT,
      { flag: '--dead-letter-topic TOPIC', help: 'where events that cannot be applied go (default <topicPrefix>.parity.dlq.cache.<name>)' },
    ],
    examples: ['parity cache run --spec orders.yaml --group orders-cache'],
    load: from('../cache-versioner/cli.js', 'cacheRunCommand'),
  },
  {
    name: 'cache cutover',
    summary: 'switch the cache version read and populated (atomic, audited); reports old keys remaining',
    options: [
      SPEC,
      { flag: '--to vN', help: 'the version to read from now on', required: true },
      { flag: '--populate vN[,vM...]', help: 'versions to keep populating (default: only --to); keep the old one for a rollback' },
      { flag: '--force', help: 'cut over although the version is not fully populated' },
      { flag: '--json', help: 'stdout is this JSON report already; accepted like on every reporting command' },
    ],
    examples: ['parity cache cutover --spec orders.yaml --to v2 --populate v2,v1'],
    load: from('../cache-versioner/cli.js', 'cacheCutoverCommand'),
  },
  {
    name: 'cache inspect',
    summary: 'compare sampled cache entries with the database; report stale entries and record evidence',
    options: [
      SPEC,
      { flag: '--sample N', help: 'entries sampled per version (default 100)' },
      { flag: '--grace-ms MS', help: 'how long a difference may last before it counts as stale (default reconcile.retryWindowMs)' },
      { flag: '--version vN', help: 'inspect this version only; repeat the option (default: every populated version)' },
      { flag: '--no-evidence', help: 'report only, record nothing' },
      { flag: '--json', help: 'stdout is this JSON report already; accepted like on every reporting command' },
    ],
    examples: ['parity cache inspect --spec orders.yaml --sample 500'],
    no: 'a stale cache entry was found',
    load: from('../cache-versioner/cli.js', 'cacheInspectCommand'),
  },
  {
    name: 'migrate status',
    summary: 'show the migration phase per cohort, each gate with its live values, flags and recent transitions',
    options: [SPEC, COHORT, JSON_OUT],
    examples: ['parity migrate status --spec orders.yaml --json'],
    load: coordinator('migrateStatusCommand'),
  },
  {
    name: 'migrate advance',
    summary: 'move a migration (or cohort) to the next phase when its gate passes; prints why not otherwise',
    options: [SPEC, COHORT, REASON, ACTOR, JSON_OUT],
    examples: ['parity migrate advance --spec orders.yaml --reason "backfill verified"'],
    no: 'the gate did not pass (each failing check is printed); nothing changed',
    load: coordinator('migrateAdvanceCommand'),
  },
  {
    name: 'migrate rollback',
    summary: 'move a migration (or cohort) back a phase: routing and flags only, never data; audited',
    options: [SPEC, COHORT, REASON, { flag: '--to PHASE', help: 'roll back to this phase (default: the previous one)' }, ACTOR, JSON_OUT],
    examples: ['parity migrate rollback --spec orders.yaml --cohort eu --reason "incident 311"'],
    no: 'there is nothing to roll back to, or contract DDL already ran',
    load: coordinator('migrateRollbackCommand'),
  },
  {
    name: 'cutover',
    summary: "move a cohort's writes and reads to the new representation; opens the reverse window (reverse slot first)",
    options: [SPEC, COHORT, REASON, ACTOR, JSON_OUT],
    examples: ['parity cutover --spec orders.yaml --cohort eu --reason "ramp at 100% for a week"'],
    no: 'the phase is before ramp, or rows the old shape cannot hold refuse it; nothing changed',
    load: reverse('cutoverCommand'),
  },
  {
    name: 'rollback',
    summary: 'flip a cut-over cohort back to the old representation once reverse sync has applied everything up to the flip',
    options: [
      SPEC,
      COHORT,
      REASON,
      ACTOR,
      {
        flag: '--flags-ttl-ms N',
        help: "how long applications may still act on the old flags (their flags reader's cache; default 1000): waited after the flip, before its position is marked",
      },
      JSON_OUT,
    ],
    examples: ['parity rollback --spec orders.yaml --cohort eu --reason "incident 311"'],
    no: 'the cohort is not cut over, or reverse sync did not reach the flip within one lease (routing is put back; nothing lost)',
    load: reverse('rollbackCommand'),
  },
  {
    name: 'reverse-sync run',
    summary: 'during the cutover window, apply every change of the new representation to the old one (reverse mapping, fenced, no echo)',
    options: [
      SPEC,
      STATUS_PORT,
      {
        flag: '--verify-every SECONDS',
        help: 'verify the old side in reverse and record the window evidence this often (default 300: a full verification each time; 0: off)',
      },
      { flag: '--batch-keys N', help: 'most keys per apply transaction (default 2000)' },
      {
        flag: '--stream-check on|off',
        help: 'check every applied key on the old side once its apply committed (the reverse stream check; default on)',
      },
    ],
    examples: ['parity reverse-sync run --spec orders.yaml --verify-every 300'],
    load: reverse('reverseSyncRun'),
  },
  {
    name: 'reverse-sync status',
    summary: 'the reverse window, each cohort, the applied position, slot lag and unrepresentable rows',
    options: [SPEC, JSON_OUT],
    examples: ['parity reverse-sync status --spec orders.yaml --json'],
    load: reverse('reverseSyncStatus'),
  },
  {
    name: 'reverse-sync check',
    summary: 'verify the old side against reverse(new) once and record the window evidence the contract gate reads',
    options: [SPEC, JSON_OUT],
    examples: ['parity reverse-sync check --spec orders.yaml'],
    no: 'the old side does not match (drift, rows in flight, or unrepresentable rows)',
    load: reverse('reverseSyncCheck'),
  },
  {
    name: 'flags get',
    summary: 'show the migration flags (dual-write, read path and ramp, kill switches) and recent changes',
    options: [SPEC, COHORT, { flag: '--audit N', help: 'show the last N changes (default 10; 0 for none)' }, JSON_OUT],
    examples: ['parity flags get --spec orders.yaml --audit 20'],
    load: coordinator('flagsGetCommand'),
  },
  {
    name: 'flags set',
    summary: 'set flags NAME=VALUE with a reason; audited; refuses routing ahead of the phase unless --force',
    args: 'NAME=VALUE ...',
    options: [SPEC, COHORT, REASON, ACTOR, { flag: '--force', help: 'allow routing ahead of the phase' }, JSON_OUT],
    examples: ['parity flags set --spec orders.yaml read=new read-percent=10 --reason "ramp 10%"'],
    no: 'the flags would route ahead of the phase (pass --force to insist); nothing changed',
    load: coordinator('flagsSetCommand'),
  },
  {
    name: 'lint',
    summary: 'flag risky DDL in the spec (locks, rewrites, drops before contract), each with the safe alternative',
    options: [SPEC, JSON_OUT],
    examples: ['parity lint --spec orders.yaml'],
    no: 'a risky DDL step was found (printed with the safe alternative)',
    load: from('../coordinator/cli.js', 'lintCommand'),
  },
  ddlEntry(
    'expand',
    "run the spec's expand DDL under the lock with lock_timeout, retries and concurrent index builds",
    coordinator('expandCommand'),
  ),
  ddlEntry(
    'enforce',
    "run the spec's enforce DDL (constraints NOT VALID then VALIDATE, SET NOT NULL) under the lock",
    coordinator('enforceCommand'),
  ),
  ddlEntry(
    'contract',
    "run the spec's contract DDL once the contract gate passes and the operator confirms (--yes)",
    coordinator('contractCommand'),
  ),
  {
    name: 'backfill run',
    summary: 'fill the new representation in checkpointed, throttled key-range batches; resumes a stopped run',
    options: [
      SPEC,
      { flag: '--workers N', help: 'key ranges copied in parallel by this process (default backfill.workers)' },
      FENCE,
      { flag: '--rerun', help: 'start a new run from the first key even if the last one completed' },
      { flag: '--no-progress', help: 'no progress bar (it is drawn only on a terminal anyway)' },
      STATUS_PORT,
      JSON_OUT,
    ],
    examples: ['parity backfill run --spec orders.yaml --workers 4'],
    no: 'the run was aborted (parity backfill ctl abort); its progress is kept',
    load: from('../backfill/cli.js', 'backfillRunCommand'),
  },
  {
    name: 'backfill ctl',
    summary: 'pause | resume | abort | set batch-size=N | set max-lag=S for a running backfill (all its processes)',
    args: 'pause|resume|abort|set batch-size=N|set batch-size=auto|set max-lag=SECONDS',
    options: [
      SPEC,
      { flag: '--wait-seconds S', help: 'how long to wait for every live process to apply it (default 5)' },
      { flag: '--json', help: 'print {command, runId, seq, liveProcesses, applied, complete}' },
    ],
    examples: ['parity backfill ctl --spec orders.yaml pause', 'parity backfill ctl --spec orders.yaml set batch-size=500 --json'],
    no: 'not every live process applied the command in time',
    load: from('../backfill/cli.js', 'backfillCtlCommand'),
  },
  {
    name: 'backfill status',
    summary: 'show the latest backfill run: progress, ranges, throttle state and reason per process, evidence',
    options: [SPEC, JSON_OUT],
    examples: ['parity backfill status --spec orders.yaml --json'],
    load: from('../backfill/cli.js', 'backfillStatusCommand'),
  },
  {
    name: 'cdc run',
    summary: "stream the spec's tables from PostgreSQL into Kafka (slot, publication, initial snapshot, no-loss acks)",
    options: [
      SPEC,
      {
        flag: '--set-replica-identity-full',
        help: 'set REPLICA IDENTITY FULL on captured tables that need it (old values in updates and deletes)',
      },
      STATUS_PORT,
      { flag: '--max-in-flight N', help: 'events sent and not yet acknowledged before decoding waits (default 5000): the memory bound' },
      {
        flag: '--producer maintained|wire',
        help: 'which Kafka producer sends the events: the maintained client or the hand-written produce path (see the CDC README)',
      },
    ],
    examples: ['parity cdc run --spec orders.yaml --status-port 9464'],
    load: from('../cdc/cli.js', 'cdcRun'),
  },
  {
    name: 'cdc status',
    summary: 'show the CDC slot: lag bytes and seconds, state, connector report, snapshots',
    options: [SPEC, JSON_OUT],
    examples: ['parity cdc status --spec orders.yaml --json'],
    load: from('../cdc/cli.js', 'cdcStatusCommand'),
  },
  {
    name: 'cdc drop-slot',
    summary: 'drop the CDC replication slot and publication (refuses an active slot unless --force)',
    options: [
      SPEC,
      { flag: '--force', help: 'drop the slot although a connector is attached to it' },
      { flag: '--json', help: 'print {slot, slotDropped, publication, publicationDropped}' },
    ],
    examples: ['parity cdc drop-slot --spec orders.yaml'],
    load: from('../cdc/cli.js', 'cdcDropSlot'),
  },
  {
    name: 'cdc snapshot',
    summary: 're-snapshot one table while streaming continues (DBLog watermarks, run by parity cdc run)',
    options: [
      SPEC,
      { flag: '--table [SCHEMA.]TABLE', help: 'the captured table to snapshot again', required: true },
      { flag: '--chunk-rows N', help: 'rows per chunk (default cdc.snapshotChunkRows)' },
      { flag: '--no-wait', help: 'queue it and return; do not wait for it to finish' },
      { flag: '--timeout SECONDS', help: 'how long to wait for it to finish' },
      {
        flag: '--json',
        help: 'stdout is one JSON line {id, table, state, rows, chunks} already; accepted like on every reporting command',
      },
    ],
    examples: ['parity cdc snapshot --spec orders.yaml --table public.orders --chunk-rows 5000'],
    no: 'the snapshot did not finish (failed, or still running at --timeout)',
    load: from('../cdc/cli.js', 'cdcSnapshot'),
  },
  {
    name: 'verify',
    summary: 'batch-verify old vs new representation (segment checksums, bisection, exact diffs); resumable, shareable; --repair',
    options: [
      SPEC,
      { flag: '--jobs N', help: 'segments verified in parallel (default reconcile.jobs)' },
      { flag: '--repair', help: 'repair the confirmed drift (fenced, conditional writes)' },
      FENCE,
      { flag: '--dry-run', help: 'plan the repairs, write nothing' },
      { flag: '--new-run', help: 'abandon an unfinished run of this migration and start a new one (default: join it)' },
      { flag: '--recheck-wait-ms N', help: 'minimum time between two looks at a differing key' },
      { flag: '--max-rechecks N', help: 'looks at a key that keeps changing before it is reported in flight (default 3)' },
      { flag: '--segment-pause-ms N', help: 'pause after each segment, to spread the load (default 0)' },
      STATUS_PORT,
      JSON_OUT,
    ],
    examples: ['parity verify --spec orders.yaml --jobs 4', 'parity verify --spec orders.yaml --repair'],
    no: 'drift was confirmed, or rows are still in flight',
    load: from('../reconciler/cli.js', 'verifyCommand'),
  },
  {
    name: 'reconcile',
    summary: 'stream-verify every change event against the new representation; publish mismatches; --repair',
    options: [
      SPEC,
      GROUP('parity-reconcile.<name>'),
      FROM_LATEST,
      { flag: '--repair', help: 'repair each confirmed mismatch (fenced, conditional writes)' },
      FENCE,
      STATUS_PORT,
      { flag: '--stop-after-idle-ms N', help: 'stop after N ms without a change (scripted runs; default: run until SIGINT/SIGTERM)' },
    ],
    examples: ['parity reconcile --spec orders.yaml --group orders-reconcile'],
    no: 'it stopped with mismatches or dead letters counted',
    load: from('../reconciler/cli.js', 'reconcileCommand'),
  },
  {
    name: 'report',
    summary: 'the latest verification as json, md or html (drift charts inline): rows, drift, in flight, repairs, verdict',
    options: [
      SPEC,
      { flag: '--format json|md|html', help: 'the format (default md)' },
      { flag: '--run ID', help: 'a given verification run (default: the latest finished one)' },
      { flag: '--out FILE', help: 'write it to FILE (default: stdout)' },
    ],
    examples: [
      'parity report --spec orders.yaml --format html --out report.html',
      'parity report --spec orders.yaml --format json | jq .verdict',
    ],
    load: from('../reconciler/cli.js', 'reportCommand'),
  },
  {
    name: 'gate contract',
    summary: 'exit 0 only when every contract criterion of the spec holds; prints each with its measured value',
    options: [SPEC, JSON_OUT],
    examples: ['parity gate contract --spec orders.yaml --json'],
    no: 'a contract criterion does not hold (each is printed with its numbers)',
    load: from('../reconciler/cli.js', 'gateContractCommand'),
  },
  {
    name: 'demo',
    summary: 'run the orders migration end to end on the local stack (--quick for CI); exits 0 only if the end state is exact',
    options: [
      { flag: '--quick', help: 'a small, fast run (CI)' },
      { flag: '--rows N', help: 'rows seeded before the migration' },
      { flag: '--rate WRITES_PER_S', help: 'checkout writes per second during the migration' },
      { flag: '--json', help: 'print the figures as JSON on the last line' },
    ],
    examples: ['parity demo --quick', 'parity demo --rows 50000 --rate 300 --json'],
    no: 'the end state was not exact (each failure is printed)',
    load: from('../demo/cli.js', 'demoCommand'),
  },
];
