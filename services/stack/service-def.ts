/**
 * What every local service provides to `stack up | down | status`: how it starts, how we know it
 * really answers, how it stops, and whether a running instance (or its state dir) matches the
 * settings asked for now.
 */
import { join } from 'node:path';
import type { ServiceName, StackConfig } from './config.js';

/** A reason to refuse `stack up` (exit 2) and what to do instead. */
export interface SettingsConflict {
  message: string;
  hint: string;
}

export interface NodeStatus {
  id: number;
  port: number;
  controllerPort: number;
  running: boolean;
  pid?: number;
  rssMb?: number;
}

export interface ServiceDef {
  name: ServiceName;
  port(config: StackConfig): number;
  logFile(config: StackConfig): string;
  /** Fetches or installs what the service needs (may download on a fresh machine). */
  prepare(config: StackConfig): void;
  /** PID of our running instance (for Kafka: only when every node runs), if any. */
  pid(config: StackConfig): number | undefined;
  /** Starts what is not running (Kafka: the missing nodes), applying the configured settings. */
  start(config: StackConfig): Promise<void>;
  /** A real request: a SQL query, producer id + group coordinator, an HTTP 200, a PING. */
  ready(config: StackConfig): Promise<boolean>;
  /** Stops every process of ours for this service, by PID; false when nothing ran. */
  stop(config: StackConfig): Promise<boolean>;
  /**
   * Settings the running instance or the state dir cannot take without a word: a port that differs
   * from the one a running process listens on, a Kafka version or broker count other than the one its
   * data was formatted with. Undefined when the configured settings can be applied.
   */
  conflict(config: StackConfig): SettingsConflict | undefined;
  /** The port the running instance really listens on (may differ from the configured one). */
  runningPort(config: StackConfig): number | undefined;
  /** The running server's version, asked of the server where it can tell. */
  version(config: StackConfig): Promise<string | undefined>;
  /** Per-node detail (Kafka). */
  nodes?(config: StackConfig): NodeStatus[];
  readyTimeoutMs: number;
}

export const pidFile = (config: StackConfig, name: string) => join(config.stateDir, 'run', `${name}.pid`);
export const logFile = (config: StackConfig, name: string) => join(config.stateDir, 'logs', `${name}.log`);
