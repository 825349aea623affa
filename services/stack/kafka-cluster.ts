/**
 * The local Kafka: one combined broker+controller KRaft node, or three (`stack up --brokers 3`) on
 * consecutive ports with replication factor 3 and min.insync.replicas 2, run from Maven Central's jars.
 *
 * A state dir's Kafka version and broker count are fixed when its data is formatted
 * (`<state>/kafka/cluster.json`); ports are not: every start rewrites `server.properties`.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Admin, FindCoordinatorKeyTypes, Producer } from '@platformatic/kafka';
import { ParityError } from '../core/errors.js';
import { kafkaClusterFile, kafkaLogging, kafkaNodes, type StackConfig } from './config.js';
import { ensureKafka, findJava, kafkaLibDir } from './fetch.js';
import { commandLine, removeFile, rssMb, runAsync, runningPid, startDetached, stopPid } from './process.js';
import { logFile, pidFile, type NodeStatus, type ServiceDef, type SettingsConflict } from './service-def.js';

/** Any valid base64 UUID; all nodes of a cluster share it. */
const KAFKA_CLUSTER_ID = '4L6g3nShT-eMCtK--X86sw';
/** Consumer group key for the readiness probe; it never joins, so no group is left behind. */
const PROBE_GROUP = 'parity-stack-ready';

interface NodeFiles {
  dir: string;
  data: string;
  properties: string;
  logConfig: string;
  logs: string;
  pidFile: string;
  logFile: string;
}

/** One node keeps the single-node layout older state dirs have; three nodes get a folder each. */
function nodeFiles(c: StackConfig, id: number): NodeFiles {
  const single = c.kafka.brokers === 1;
  const dir = single ? join(c.stateDir, 'kafka') : join(c.stateDir, 'kafka', `node-${id}`);
  const name = single ? 'kafka' : `kafka-${id}`;
  const log4j2 = kafkaLogging(c.kafka.version) === 'log4j2';
  return {
    dir,
    data: join(dir, 'data'),
    properties: join(dir, 'server.properties'),
    logConfig: join(dir, log4j2 ? 'log4j2.properties' : 'log4j.properties'),
    logs: join(dir, 'logs'),
    pidFile: pidFile(c, name),
    logFile: logFile(c, name),
  };
}

const nodePid = (c: StackConfig, id: number) => runningPid(nodeFiles(c, id).pidFile, nodeFiles(c, id).properties);

/** The ports a running node was started with, read back from the properties file it runs on. */
function runningListeners(c: StackConfig, id: number): { port: number; controllerPort: number } | undefined {
  const f = nodeFiles(c, id);
  if (!nodePid(c, id) || !existsSync(f.properties)) return undefined;
  const listeners = /^listeners=(.*)$/m.exec(readFileSync(f.properties, 'utf8'))?.[1] ?? '';
  const port = /PLAINTEXT:\/\/[^:,]+:(\d+)/.exec(listeners)?.[1];
  const controllerPort = /CONTROLLER:\/\/[^:,]+:(\d+)/.exec(listeners)?.[1];
  return port && controllerPort ? { port: Number(port), controllerPort: Number(controllerPort) } : undefined;
}

function serverProperties(c: StackConfig, id: number): string {
  const nodes = kafkaNodes(c);
  const node = nodes[id - 1]!;
  const rf = c.kafka.brokers;
  // With three nodes, a write acknowledged by acks=all survives losing any one node.
  const minIsr = rf >= 3 ? 2 : 1;
  return [
    'process.roles=broker,controller',
    `node.id=${id}`,
    `controller.quorum.voters=${nodes.map((n) => `${n.id}@127.0.0.1:${n.controllerPort}`).join(',')}`,
    `listeners=PLAINTEXT://127.0.0.1:${node.port},CONTROLLER://127.0.0.1:${node.controllerPort}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${node.port}`,
    'inter.broker.listener.name=PLAINTEXT',
    'controller.listener.names=CONTROLLER',
    'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    `log.dirs=${nodeFiles(c, id).data}`,
    'num.partitions=1',
    `default.replication.factor=${rf}`,
    `min.insync.replicas=${minIsr}`,
    `offsets.topic.replication.factor=${rf}`,
    'offsets.topic.num.partitions=1',
    `transaction.state.log.replication.factor=${rf}`,
    `transaction.state.log.min.isr=${minIsr}`,
    'transaction.state.log.num.partitions=1',
    `share.coordinator.state.topic.replication.factor=${rf}`,
    `share.coordinator.state.topic.min.isr=${minIsr}`,
    'group.initial.rebalance.delay.ms=0',
    'auto.create.topics.enable=true',
    'log.retention.hours=24',
    'log.segment.bytes=268435456',
    '',
  ].join('\n');
}

function logConfig(c: StackConfig): string {
  if (kafkaLogging(c.kafka.version) === 'log4j2') {
    return [
      'status = warn',
      'appender.stdout.type = Console',
      'appender.stdout.name = STDOUT',
      'appender.stdout.layout.type = PatternLayout',
      'appender.stdout.layout.pattern = [%d] %p %m (%c)%n',
      'rootLogger.level = INFO',
      'rootLogger.appenderRef.stdout.ref = STDOUT',
      'logger.statechange.name = state.change.logger',
      'logger.statechange.level = WARN',
      '',
    ].join('\n');
  }
  return [
    'log4j.rootLogger=INFO, stdout',
    'log4j.appender.stdout=org.apache.log4j.ConsoleAppender',
    'log4j.appender.stdout.layout=org.apache.log4j.PatternLayout',
    'log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n',
    'log4j.logger.kafka=INFO',
    'log4j.logger.org.apache.kafka=INFO',
    'log4j.logger.state.change.logger=WARN',
    '',
  ].join('\n');
}

const logFlag = (c: StackConfig, file: string) =>
  kafkaLogging(c.kafka.version) === 'log4j2' ? `-Dlog4j2.configurationFile=${file}` : `-Dlog4j.configuration=file:${file}`;

async function startNode(c: StackConfig, id: number): Promise<void> {
  const f = nodeFiles(c, id);
  mkdirSync(f.data, { recursive: true });
  mkdirSync(f.logs, { recursive: true });
  writeFileSync(f.properties, serverProperties(c, id));
  writeFileSync(f.logConfig, logConfig(c));
  const lib = kafkaLibDir(c);
  const java = findJava(17, `Apache Kafka ${c.kafka.version}`);
  if (!existsSync(join(f.data, 'meta.properties'))) {
    // Static quorum (controller.quorum.voters): formatted without --standalone, every node with one cluster id.
    const format = await runAsync(java, [
      '-Xmx128m',
      logFlag(c, f.logConfig),
      '-cp',
      `${lib}/*`,
      'kafka.tools.StorageTool',
      'format',
      '-t',
      KAFKA_CLUSTER_ID,
      '-c',
      f.properties,
      '--ignore-formatted',
    ]);
    if (format.status !== 0)
      throw new ParityError('PARITY_STACK_FAILED', `kafka node ${id}: storage format failed:\n${format.stdout}${format.stderr}`);
  }
  // Three JVMs share the machine with everything else: smaller heaps than the single node's.
  const heap = c.kafka.brokers > 1 ? ['-Xms128m', '-Xmx384m'] : ['-Xms512m', '-Xmx512m'];
  const jvm = [
    ...heap,
    '-XX:+UseG1GC',
    '-XX:MaxGCPauseMillis=20',
    '-Djava.awt.headless=true',
    logFlag(c, f.logConfig),
    `-Dkafka.logs.dir=${f.logs}`,
    '-cp',
    `${lib}/*`,
  ];
  startDetached({ command: java, args: [...jvm, 'kafka.Kafka', f.properties], logFile: f.logFile, pidFile: f.pidFile });
}

const bootstrap = (c: StackConfig) => kafkaNodes(c).map((n) => `127.0.0.1:${n.port}`);

/**
 * Ready means usable, not merely listening: every broker is registered, a group coordinator answers
 * an offset fetch (no COORDINATOR_LOAD_IN_PROGRESS / NOT_AVAILABLE), and an idempotent producer gets
 * a producer id. A brand-new broker refuses the last two for a moment, and a CDC connector or demo
 * started in that moment would see retriable errors on its first request.
 */
async function kafkaReady(c: StackConfig): Promise<boolean> {
  const common = {
    clientId: 'parity-stack',
    bootstrapBrokers: bootstrap(c),
    retries: 0,
    connectTimeout: 2_000,
    requestTimeout: 5_000,
    timeout: 5_000,
  };
  const admin = new Admin(common);
  const producer = new Producer({ ...common, idempotent: true });
  try {
    const metadata = await admin.metadata({ topics: [], forceUpdate: true });
    if (metadata.brokers.size < c.kafka.brokers || metadata.controllerId < 0) return false;
    const [coordinator] = await admin.findCoordinator({ keyType: FindCoordinatorKeyTypes.GROUP, keys: [PROBE_GROUP] });
    if (!coordinator || coordinator.nodeId < 0) return false;
    await admin.listConsumerGroupOffsets({ groups: [PROBE_GROUP] });
    const info = await producer.initIdempotentProducer({});
    return info.producerId >= 0n;
  } finally {
    await Promise.allSettled([admin.close(), producer.close()]);
  }
}

function kafkaConflict(c: StackConfig): SettingsConflict | undefined {
  const recorded = c.kafkaRecorded;
  const requested = c.kafkaRequested;
  const fresh = `use another PARITY_STATE_DIR, or stop it (parity stack down kafka) and delete ${join(c.stateDir, 'kafka')} to start over with the new setting (its topics are lost)`;
  if (recorded && requested.version && requested.version !== recorded.version) {
    return {
      message: `the Kafka data in ${join(c.stateDir, 'kafka')} was formatted by Kafka ${recorded.version}; PARITY_KAFKA_VERSION asks for ${requested.version}, which this state dir cannot switch to in place`,
      hint: `unset PARITY_KAFKA_VERSION (or set it to ${recorded.version}) to keep this cluster; or ${fresh}`,
    };
  }
  if (recorded && requested.brokers && requested.brokers !== recorded.brokers) {
    return {
      message: `the Kafka cluster in ${join(c.stateDir, 'kafka')} was formatted with ${recorded.brokers} broker(s); --brokers ${requested.brokers} would need a different quorum`,
      hint: `drop --brokers (or use --brokers ${recorded.brokers}) to keep this cluster; or ${fresh}`,
    };
  }
  for (const node of kafkaNodes(c)) {
    const live = runningListeners(c, node.id);
    if (live && (live.port !== node.port || live.controllerPort !== node.controllerPort)) {
      return {
        message: `kafka node ${node.id} runs on ports ${live.port}/${live.controllerPort} (broker/controller), but the settings ask for ${node.port}/${node.controllerPort}`,
        hint: `stop it first (parity stack down kafka) and run stack up again to move it; or set PARITY_KAFKA_PORT=${live.port - node.id + 1} and PARITY_KAFKA_CONTROLLER_PORT=${live.controllerPort - node.id + 1} to keep it where it is`,
      };
    }
  }
  return undefined;
}

export const kafka: ServiceDef = {
  name: 'kafka',
  port: (c) => c.ports.kafka,
  logFile: (c) => nodeFiles(c, 1).logFile,
  readyTimeoutMs: 120_000,
  prepare: (c) => {
    ensureKafka(c);
    findJava(17, `Apache Kafka ${c.kafka.version}`);
  },
  pid(c) {
    const pids = kafkaNodes(c).map((n) => nodePid(c, n.id));
    return pids.every((p) => p !== undefined) ? pids[0] : undefined;
  },
  conflict: kafkaConflict,
  runningPort: (c) => runningListeners(c, 1)?.port,
  nodes(c): NodeStatus[] {
    return kafkaNodes(c).map((n) => {
      const pid = nodePid(c, n.id);
      const live = runningListeners(c, n.id);
      return {
        id: n.id,
        port: live?.port ?? n.port,
        controllerPort: live?.controllerPort ?? n.controllerPort,
        running: pid !== undefined,
        pid,
        rssMb: pid ? rssMb(pid) : undefined,
      };
    });
  },
  async start(c) {
    if (!c.kafkaRecorded) {
      mkdirSync(join(c.stateDir, 'kafka'), { recursive: true });
      writeFileSync(
        kafkaClusterFile(c.stateDir),
        `${JSON.stringify({ version: c.kafka.version, brokers: c.kafka.brokers, formattedAt: new Date().toISOString() }, null, 2)}\n`,
      );
      c.kafkaRecorded = { ...c.kafka };
    }
    // All missing nodes format and start together: a quorum of three needs two voters before anything is ready.
    await Promise.all(
      kafkaNodes(c)
        .filter((node) => !nodePid(c, node.id))
        .map((node) => startNode(c, node.id)),
    );
  },
  ready: kafkaReady,
  async stop(c) {
    const running = kafkaNodes(c)
      .map((n) => ({ id: n.id, pid: nodePid(c, n.id) }))
      .filter((n): n is { id: number; pid: number } => n.pid !== undefined);
    // In parallel: a node stopped last, alone, would wait for a controller quorum that is gone.
    await Promise.all(
      running.map(async (n) => {
        await stopPid(n.pid, 30_000);
        removeFile(nodeFiles(c, n.id).pidFile);
      }),
    );
    return running.length > 0;
  },
  async version(c) {
    // The version of the jars the running node was started from (its class path names the cache folder).
    const pid =
      nodePid(c, 1) ??
      kafkaNodes(c)
        .map((n) => nodePid(c, n.id))
        .find((p) => p !== undefined);
    if (!pid) return undefined;
    return /kafka-(\d+\.\d+\.\d+)\/lib/.exec(commandLine(pid))?.[1];
  },
};

/** Stops one node of the cluster by its PID (fault tests: kill the leader of a partition). */
export async function stopKafkaNode(c: StackConfig, id: number, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<boolean> {
  const pid = nodePid(c, id);
  if (!pid) return false;
  if (signal === 'SIGKILL') {
    process.kill(pid, 'SIGKILL');
    await stopPid(pid, 10_000);
  } else {
    await stopPid(pid, 30_000);
  }
  removeFile(nodeFiles(c, id).pidFile);
  return true;
}
