import { parseOptions } from '../core/options.js';
import { ParityError } from '../core/errors.js';
import { BROKER_COUNTS, SERVICES, stackConfig, stackEnv, type ServiceName, type StackConfig, type StackConfigOptions } from './config.js';
import { checkSecureOptions } from './secure.js';
import { stackDown, stackStatus, stackUp } from './stack.js';
import { replicaEnv, replicaWanted } from './replica.js';
import { connectWanted } from './connect.js';

function serviceList(positionals: string[]): ServiceName[] {
  if (positionals.length === 0) return SERVICES;
  for (const p of positionals) {
    if (!SERVICES.includes(p as ServiceName)) {
      throw new ParityError('PARITY_BAD_INPUT', `unknown service "${p}"`, { hint: `one of ${SERVICES.join(', ')}` });
    }
  }
  return positionals as ServiceName[];
}

/** Export lines; values are single-quoted when they hold shell characters (the secured URLs hold `&`). */
/** The settings `stack env` prints (the replica's only when it runs). */
function envSettings(config: StackConfig): Record<string, string> {
  const replica = config.secure ? {} : replicaEnv(config);
  return Object.fromEntries(Object.entries({ ...stackEnv(config), ...replica }).filter((e): e is [string, string] => e[1] !== undefined));
}

function envLines(config: StackConfig): string {
  const quote = (v: string) => (/^[\w@%+=:,./-]*$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`);
  return Object.entries(envSettings(config))
    .map(([k, v]) => `export ${k}=${quote(v)}`)
    .join('\n');
}

const SECURE_OPTION = { secure: { type: 'boolean' } } as const;
/** `--secure` or PARITY_STACK_SECURE=1: the secured stack (secure.ts), its own state dir and ports. */
const configFor = (values: { secure?: boolean | undefined }, options: StackConfigOptions = {}) =>
  stackConfig(process.env, { ...options, ...(values.secure ? { secure: true } : {}) });

const UP_USAGE = `parity stack up [--json] [--brokers ${BROKER_COUNTS.join('|')}] [--with-replica] [--with-connect] [--secure] [${SERVICES.join('|')} ...]`;

function brokerCount(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || !(BROKER_COUNTS as readonly number[]).includes(n)) {
    throw new ParityError('PARITY_BAD_INPUT', `--brokers ${value} is not supported`, {
      hint: `use --brokers ${BROKER_COUNTS.join(' or --brokers ')}; usage: ${UP_USAGE}`,
    });
  }
  return n;
}

/**
 * `parity stack up`: fetch, start and health-check the local stack; prints export lines.
 * `--brokers 3` starts a three-node KRaft cluster (fixed for the state dir once formatted).
 */
export async function stackUpCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseOptions(
    argv,
    {
      json: { type: 'boolean' },
      brokers: { type: 'string' },
      'with-replica': { type: 'boolean' },
      'with-connect': { type: 'boolean' },
      ...SECURE_OPTION,
    },
    UP_USAGE,
  );
  const config = configFor(values, { brokers: brokerCount(values.brokers) });
  if (config.secure) checkSecureOptions(config, { replica: values['with-replica'] ?? replicaWanted() });
  if (config.secure && (values['with-connect'] ?? connectWanted()))
    throw new ParityError('PARITY_BAD_INPUT', 'the Kafka Connect worker runs with the plaintext stack only', {
      hint: `drop --with-connect (and PARITY_STACK_CONNECT) with --secure; usage: ${UP_USAGE}`,
    });
  const t0 = Date.now();
  const status = await stackUp(
    {
      services: serviceList(positionals),
      ...(values['with-replica'] ? { replica: true } : {}),
      ...(values['with-connect'] ? { connect: true } : {}),
      onProgress: (line) => process.stderr.write(`${line}\n`),
    },
    config,
  );
  const seconds = (Date.now() - t0) / 1000;
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ seconds, services: status }, null, 2)}\n`);
  } else {
    for (const s of status) process.stderr.write(`${s.service.padEnd(10)} ${s.action} pid ${s.pid} port ${s.port}\n`);
    process.stderr.write(`stack ready in ${seconds.toFixed(1)}s; state in ${config.stateDir}\n`);
    process.stdout.write(`${envLines(configFor(values))}\n`);
  }
  return 0;
}

/** `parity stack down [service...]`: stops what parity started, by PID. */
export async function stackDownCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseOptions(
    argv,
    { json: { type: 'boolean' }, ...SECURE_OPTION },
    `parity stack down [--secure] [--json] [${SERVICES.join('|')} ...]`,
  );
  const stopped = await stackDown(serviceList(positionals), configFor(values));
  if (values.json) process.stdout.write(`${JSON.stringify({ stopped })}\n`);
  else process.stdout.write(stopped.length ? `stopped: ${stopped.join(', ')}\n` : 'nothing of ours was running\n');
  return 0;
}

/** `parity stack status [--json]`: running or not, version, PID, port, RSS, Kafka's nodes. Exit 0 when every service runs, 1 otherwise. */
export async function stackStatusCommand(argv: string[]): Promise<number> {
  const { values } = parseOptions(argv, { json: { type: 'boolean' }, ...SECURE_OPTION }, 'parity stack status [--json] [--secure]');
  const status = await stackStatus(configFor(values));
  if (values.json) process.stdout.write(`${JSON.stringify(status, null, 2)}\n`);
  else {
    for (const s of status) {
      process.stdout.write(
        `${s.service.padEnd(10)} ${s.running ? 'running' : 'stopped'}${s.version ? `  ${s.version}` : ''}${s.pid ? `  pid ${s.pid}` : ''}  port ${s.port}${s.rssMb !== undefined ? `  rss ${s.rssMb} MB` : ''}\n`,
      );
      if (s.nodes && s.nodes.length > 1) {
        for (const n of s.nodes)
          process.stdout.write(
            `  node ${n.id}   ${n.running ? 'running' : 'stopped'}${n.pid ? `  pid ${n.pid}` : ''}  port ${n.port} (controller ${n.controllerPort})\n`,
          );
      }
    }
  }
  return status.every((s) => s.running) ? 0 : 1;
}

/** `parity stack env`: export lines, for `eval "$(npx parity stack env)"`; `--json`: one object of the same settings. */
export async function stackEnvCommand(argv: string[]): Promise<number> {
  const { values } = parseOptions(argv, { json: { type: 'boolean' }, ...SECURE_OPTION }, 'parity stack env [--secure] [--json]');
  const config = configFor(values);
  process.stdout.write(values.json ? `${JSON.stringify(envSettings(config), null, 2)}\n` : `${envLines(config)}\n`);
  return 0;
}
