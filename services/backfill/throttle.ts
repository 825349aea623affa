/**
 * Throttle decisions, pure: from one snapshot of the signals and the limits, the list of reasons to
 * pause (any one pauses, as in gh-ost) and whether load crossed the abort threshold. The controller
 * gathers the signals (throttle-signals.ts, probe.ts) and acts on the result.
 */
export type ThrottleReason =
  | 'operator'
  | 'kill_switch'
  | 'replica_lag'
  | 'slot_lag'
  | 'wal_rate'
  | 'probe_p99'
  | 'load'
  | 'http_probe'
  | 'flag_file'
  | 'latency_guard';

/** Every reason, for metrics (a closed, low-cardinality label set). */
export const THROTTLE_REASONS: ThrottleReason[] = [
  'operator',
  'kill_switch',
  'replica_lag',
  'slot_lag',
  'wal_rate',
  'probe_p99',
  'load',
  'http_probe',
  'flag_file',
  'latency_guard',
];

export interface ThrottleFinding {
  reason: ThrottleReason;
  /** For people: what crossed which limit, with the numbers. */
  detail: string;
}

export interface ThrottleSignals {
  /** Set when an operator paused the run (ctl pause / HTTP), with who did it. */
  pausedBy?: string | null;
  /**
   * Largest replay lag of a physical replica, seconds (0 without replicas): the larger of
   * `replay_lag` and the WAL bytes not yet replayed over the recent WAL rate.
   */
  replicationLagSeconds?: number;
  /** WAL bytes the most-behind replica has not replayed yet (for the detail only). */
  replicaLagBytes?: number;
  /** The server's WAL rate (all writers), bytes/s, and the limit `pace.maxServerWalBytesPerSecond`. */
  serverWal?: { bytesPerSecond: number; max: number };
  /** The CDC slot's lag; undefined when the slot does not exist. */
  slotLag?: { slot: string; bytes: number; seconds: number; active: boolean };
  /** Active client backends, parity's own workers excluded. */
  activeBackends?: number;
  /** p99 of the probe query over its window, ms; undefined before the first sample. */
  probeP99Ms?: number;
  probeSamples?: number;
  /** Last HTTP probe answer: status code, or an error text when it did not answer. */
  http?: { url: string; status?: number; error?: string };
  flagFile?: { path: string; exists: boolean };
  /** The coordinator's `kill-backfill` flag (parity flags set ... kill-backfill=on). */
  killSwitch?: boolean;
  /** Set while the latency guard holds the backfill to measure its baseline. */
  latencyBaseline?: {
    reason: 'start' | 'periodic' | 'over-at-minimum';
    elapsedSeconds: number;
    seconds: number;
    samples: number;
    p99Ms?: number;
    limitMs?: number;
  };
}

export interface ThrottleLimits {
  maxLagSeconds: number;
  maxActive?: number;
  abortActive?: number;
  probeMaxP99Ms?: number;
}

export interface ThrottleDecision {
  findings: ThrottleFinding[];
  /** Load is above the abort threshold in this snapshot. */
  overAbortThreshold: boolean;
}

const fmt = (n: number, digits = 2): string => (Number.isInteger(n) ? String(n) : n.toFixed(digits));

export function evaluateThrottle(s: ThrottleSignals, limits: ThrottleLimits): ThrottleDecision {
  const findings: ThrottleFinding[] = [];
  if (s.pausedBy) findings.push({ reason: 'operator', detail: s.pausedBy });
  if (s.killSwitch)
    findings.push({
      reason: 'kill_switch',
      detail: 'the kill-backfill flag is on; `parity flags set --spec FILE kill-backfill=off --reason ...` lets the backfill continue',
    });
  if (s.replicationLagSeconds !== undefined && s.replicationLagSeconds > limits.maxLagSeconds) {
    const bytes = s.replicaLagBytes ? ` (${s.replicaLagBytes} bytes not replayed)` : '';
    findings.push({
      reason: 'replica_lag',
      detail: `replica replay lag ${fmt(s.replicationLagSeconds)}s${bytes} > max ${fmt(limits.maxLagSeconds)}s`,
    });
  }
  if (s.slotLag && s.slotLag.seconds > limits.maxLagSeconds) {
    findings.push({
      reason: 'slot_lag',
      detail: `CDC slot ${s.slotLag.slot} lag ~${fmt(s.slotLag.seconds)}s (${s.slotLag.bytes} bytes${s.slotLag.active ? '' : ', no consumer connected'}) > max ${fmt(limits.maxLagSeconds)}s`,
    });
  }
  if (s.serverWal && s.serverWal.bytesPerSecond > s.serverWal.max) {
    findings.push({
      reason: 'wal_rate',
      detail: `server WAL ${Math.round(s.serverWal.bytesPerSecond / 1024)} KiB/s > maxServerWalBytesPerSecond ${Math.round(s.serverWal.max / 1024)} KiB/s`,
    });
  }
  if (limits.maxActive !== undefined && s.activeBackends !== undefined && s.activeBackends > limits.maxActive) {
    findings.push({ reason: 'load', detail: `${s.activeBackends} active backends > maxActive ${limits.maxActive}` });
  }
  if (limits.probeMaxP99Ms !== undefined && s.probeP99Ms !== undefined && s.probeP99Ms > limits.probeMaxP99Ms) {
    findings.push({
      reason: 'probe_p99',
      detail: `probe p99 ${fmt(s.probeP99Ms, 1)}ms over ${s.probeSamples ?? 0} samples > maxP99Ms ${fmt(limits.probeMaxP99Ms)}`,
    });
  }
  if (s.http && (s.http.error !== undefined || s.http.status === undefined || s.http.status < 200 || s.http.status > 299)) {
    findings.push({
      reason: 'http_probe',
      detail: `HTTP probe ${s.http.url} ${s.http.error ? `failed: ${s.http.error}` : `answered ${s.http.status}`}`,
    });
  }
  if (s.flagFile?.exists) findings.push({ reason: 'flag_file', detail: `flag file ${s.flagFile.path} exists` });
  if (s.latencyBaseline) {
    const b = s.latencyBaseline;
    const why =
      b.reason === 'start'
        ? 'before the first batch'
        : b.reason === 'periodic'
          ? 'periodic re-measurement'
          : `probe p99 ${b.p99Ms !== undefined ? `${fmt(b.p99Ms, 2)}ms ` : ''}over the limit${b.limitMs !== undefined ? ` ${fmt(b.limitMs, 2)}ms` : ''} at the minimum duty cycle`;
    findings.push({
      reason: 'latency_guard',
      detail: `measuring the latency baseline with the backfill held (${why}): ${fmt(b.elapsedSeconds, 1)}s of ${fmt(b.seconds, 1)}s, ${b.samples} probes`,
    });
  }
  const overAbortThreshold = limits.abortActive !== undefined && s.activeBackends !== undefined && s.activeBackends > limits.abortActive;
  return { findings, overAbortThreshold };
}

/** One line naming every reason, for status and logs. */
export function describeFindings(findings: readonly ThrottleFinding[]): string {
  return findings.map((f) => `${f.reason}: ${f.detail}`).join('; ');
}
