/**
 * `parity backfill run | ctl | status`. Handlers parse options, load the spec, and call the
 * programmatic API; logs go to stderr (JSON), the summary to stdout.
 */
import { createFlagsReader } from '../coordinator/flags-reader.js';
import { createRedis } from '../core/clients.js';
import { hostname, userInfo } from 'node:os';
import { parseOptions, required, intOption } from '../core/options.js';
import { createPgClient } from '../core/clients.js';
import { ParityError } from '../core/errors.js';
import { createLogger } from '../core/log.js';
import { createMetricsRegistry } from '../core/metrics.js';
import { resolveStatusPort, specStatusPort } from '../core/http.js';
import { redact } from '../core/secrets.js';
import { controlDatabase, loadSpec, targetDatabase } from '../core/spec.js';
import { runBackfill } from './backfill.js';
import { CONTROL_USAGE, controlLimits, formatControlCommand, parseControlCommand } from './control-command.js';
import { applyControlCommand, controlTables, liveProcesses } from './control-store.js';
import { ProgressBar } from './progress.js';
import { formatStatus, readStatus } from './status.js';

const RUN_USAGE = 'parity backfill run --spec FILE [--workers N] [--fence-token N] [--rerun] [--status-port N] [--no-progress] [--json]';

/** `parity backfill run`: fills the new representation; resumes a stopped run from its checkpoints. */
export async function backfillRunCommand(argv: string[]): Promise<number> {
  const { values } = parseOptions(
    argv,
    {
      spec: { type: 'string' },
      workers: { type: 'string' },
      'fence-token': { type: 'string' },
      rerun: { type: 'boolean' },
      'status-port': { type: 'string' },
      'no-progress': { type: 'boolean' },
      json: { type: 'boolean' },
    },
    RUN_USAGE,
  );
  const { spec } = loadSpec(required(values.spec, '--spec', RUN_USAGE));
  const workers = intOption(values.workers, '--workers', RUN_USAGE);
  // Status and control server: --status-port > PARITY_STATUS_PORT > spec > 9404 (see services/core/http.ts).
  const controlPort = resolveStatusPort('backfill', {
    flag: values['status-port'],
    specPort: specStatusPort(spec, 'backfill'),
    usage: RUN_USAGE,
  }).port;
  let fenceToken: bigint | undefined;
  if (values['fence-token'] !== undefined) {
    if (!/^\d+$/.test(values['fence-token']))
      throw new ParityError('PARITY_BAD_INPUT', `--fence-token must be a non-negative integer, got "${values['fence-token']}"`, {
        hint: `usage: ${RUN_USAGE}`,
      });
    fenceToken = BigInt(values['fence-token']);
  }
  const bar = new ProgressBar(process.stderr, !values['no-progress']);
  // Log lines clear the progress bar first, so the two never tear each other.
  const logger = createLogger({
    name: 'backfill',
    destination: {
      write: (line: string) => {
        bar.clear();
        process.stderr.write(line);
        bar.redraw();
      },
    },
  });
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals > 1) process.exit(130);
    logger.warn(
      { signal: sig },
      'stopping after the batches in flight (signal again to exit now); the next run resumes from the checkpoints',
    );
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // The coordinator's kill switch: a flag read from Redis (cached, never throws), checked on every poll.
  const redis = createRedis(spec.infra.redis, { maxRetriesPerRequest: 1, enableOfflineQueue: false });
  const flags = createFlagsReader({ redis, migration: spec.name, logger });
  try {
    const result = await runBackfill({
      killSwitch: async () => (await flags.get()).killBackfill,
      spec,
      logger,
      metrics: createMetricsRegistry({ service: 'backfill' }),
      signal: controller.signal,
      ...(workers !== undefined ? { workers } : {}),
      ...(fenceToken !== undefined ? { fenceToken } : {}),
      rerun: values.rerun ?? false,
      progressBar: bar,
      // The token this process's batches carry (not a secret): the operator can see who fences whom.
      onFence: ({ scope, token, source, runId }) => {
        bar.clear();
        const how =
          source === 'given'
            ? 'given with --fence-token'
            : source === 'issued'
              ? `issued to run ${runId}, fencing out earlier holders`
              : `shared with the other processes of run ${runId}`;
        process.stderr.write(`backfill fencing token ${token} for "${scope}" (${how})\n`);
        bar.redraw();
      },
      controlPort,
      // Shown once, on stderr, to the operator who started the run; logs only ever show it redacted.
      onControlListening: ({ url, token, tokenSource }) => {
        bar.clear();
        process.stderr.write(
          tokenSource === 'generated'
            ? `backfill control: POST ${url}/control with Authorization: Bearer ${token} (this process's token; set PARITY_CONTROL_TOKEN to choose one)\n`
            : `backfill control: POST ${url}/control with the bearer token from PARITY_CONTROL_TOKEN\n`,
        );
        bar.redraw();
      },
    });
    bar.finish();
    if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else {
      const rate = result.seconds > 0 ? Math.round(result.processRows / result.seconds) : 0;
      const what =
        result.outcome === 'already-complete'
          ? `backfill of "${spec.name}" was already complete (run ${result.runId}); --rerun walks the table again`
          : result.outcome === 'completed'
            ? `backfill of "${spec.name}" complete (run ${result.runId}): ${result.rowsDone.toLocaleString('en-US')} rows, ${result.rowsChanged.toLocaleString('en-US')} written, ${result.batches} batches; this process: ${result.processRows.toLocaleString('en-US')} rows in ${result.seconds.toFixed(1)} s (${rate.toLocaleString('en-US')} rows/s)`
            : `backfill of "${spec.name}" stopped (run ${result.runId}) at ${result.rowsDone.toLocaleString('en-US')}/${result.rowsPlanned.toLocaleString('en-US')} rows; run the same command to resume`;
      process.stdout.write(`${what}\n`);
    }
    return result.outcome === 'stopped' ? 130 : 0;
  } finally {
    bar.finish();
    await flags.close().catch(() => undefined);
    redis.disconnect();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

const CTL_USAGE = `parity backfill ctl --spec FILE ${CONTROL_USAGE} [--wait-seconds S] [--json]`;

/**
 * `parity backfill ctl`: writes the command into the run's control row in the control schema (which
 * every process of the run polls), then waits until every live process has applied it.
 */
export async function backfillCtlCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseOptions(
    argv,
    { spec: { type: 'string' }, 'wait-seconds': { type: 'string' }, json: { type: 'boolean' } },
    CTL_USAGE,
  );
  const { spec } = loadSpec(required(values.spec, '--spec', CTL_USAGE));
  // The spec's limits apply to ctl exactly as to the HTTP endpoint.
  const command = parseControlCommand(positionals, controlLimits(spec.backfill));
  const waitSeconds = values['wait-seconds'] === undefined ? 5 : Number(values['wait-seconds']);
  if (!Number.isFinite(waitSeconds) || waitSeconds < 0)
    throw new ParityError('PARITY_BAD_INPUT', `--wait-seconds must be a number >= 0`, { hint: `usage: ${CTL_USAGE}` });
  const schema = spec.control.schema;
  const db = createPgClient(controlDatabase(spec), { applicationName: 'parity-backfill-ctl' });
  await db.connect();
  try {
    const { rows } = await db.query(`SELECT to_regclass($1) IS NOT NULL AS present`, [controlTables(schema).runs]);
    if (!rows[0]?.present) {
      throw new ParityError(
        'PARITY_BAD_INPUT',
        `no backfill run of "${spec.name}" to control (the control schema has no backfill tables yet)`,
        { hint: 'start one with `parity backfill run --spec FILE`' },
      );
    }
    const actor = `${safeUser()}@${hostname()} via ctl`;
    const applied = await applyControlCommand(db, schema, spec.name, command, actor);
    const text = formatControlCommand(command);
    const deadline = Date.now() + waitSeconds * 1000;
    let live = await liveProcesses(db, schema, applied.runId, 5);
    while (live.some((p) => p.appliedSeq < applied.seq) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      live = await liveProcesses(db, schema, applied.runId, 5);
    }
    const acked = live.filter((p) => p.appliedSeq >= applied.seq).length;
    const line =
      live.length === 0
        ? `${text}: recorded for run ${applied.runId}; no live backfill process (it applies when the run resumes)`
        : `${text}: recorded for run ${applied.runId}; applied by ${acked} of ${live.length} live process${live.length === 1 ? '' : 'es'}`;
    if (values.json) {
      const report = {
        command: text,
        runId: applied.runId,
        seq: applied.seq,
        liveProcesses: live.length,
        applied: acked,
        complete: acked === live.length,
      };
      process.stdout.write(`${redact(JSON.stringify(report))}\n`);
    } else process.stdout.write(`${redact(line)}\n`);
    return acked === live.length ? 0 : 1;
  } finally {
    await db.end().catch(() => undefined);
  }
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}

const STATUS_USAGE = 'parity backfill status --spec FILE [--json]';

/** `parity backfill status`: the latest run, its live processes with throttle reasons, and the evidence. */
export async function backfillStatusCommand(argv: string[]): Promise<number> {
  const { values } = parseOptions(argv, { spec: { type: 'string' }, json: { type: 'boolean' } }, STATUS_USAGE);
  const { spec } = loadSpec(required(values.spec, '--spec', STATUS_USAGE));
  const db = createPgClient(controlDatabase(spec), { applicationName: 'parity-backfill-status' });
  await db.connect();
  // The fence table lives where the batches write; a second session only when that is elsewhere.
  const fenceUrl = spec.target.kind === 'other-database' ? targetDatabase(spec) : spec.source.database;
  const fenceDb = fenceUrl === controlDatabase(spec) ? null : createPgClient(fenceUrl, { applicationName: 'parity-backfill-status' });
  try {
    await fenceDb?.connect();
    const report = await readStatus(db, spec.control.schema, spec.name, fenceDb ? { fenceDb } : {});
    process.stdout.write(values.json ? `${redact(JSON.stringify(report))}\n` : redact(formatStatus(report)));
    return 0;
  } finally {
    await db.end().catch(() => undefined);
    await fenceDb?.end().catch(() => undefined);
  }
}
