/**
 * Progress of a verification run: a one-line bar redrawn on a terminal, and otherwise a structured
 * log line every `intervalMs` (the metrics carry the same figures for dashboards).
 */
import type { Logger } from '../core/log.js';

export interface ProgressState {
  runId: number;
  total: number;
  done: number;
  rows: number;
  driftSuspects: number;
}

export interface ProgressReporter {
  update(state: ProgressState): void;
  finish(): void;
}

function bar(done: number, total: number, width = 30): string {
  const filled = total === 0 ? width : Math.round((done / total) * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
}

export function createProgress(options: {
  stream: NodeJS.WriteStream;
  logger: Logger;
  intervalMs?: number;
  now?: () => number;
}): ProgressReporter {
  const now = options.now ?? (() => performance.now());
  const started = now();
  let lastLog = -Infinity;
  const tty = options.stream.isTTY === true;
  let drawn = false;
  return {
    update(s) {
      const seconds = (now() - started) / 1000;
      if (tty) {
        const rate = seconds > 0 ? Math.round(s.rows / seconds) : 0;
        options.stream.write(
          `\r${bar(s.done, s.total)} ${s.done}/${s.total} segments  ${s.rows.toLocaleString('en-US')} rows  ${rate.toLocaleString('en-US')} rows/s  ${s.driftSuspects} differing  ${seconds.toFixed(1)}s `,
        );
        drawn = true;
      } else if (now() - lastLog >= (options.intervalMs ?? 5000) || s.done === s.total) {
        lastLog = now();
        options.logger.info(
          {
            runId: s.runId,
            segmentsDone: s.done,
            segments: s.total,
            rows: s.rows,
            differing: s.driftSuspects,
            seconds: Math.round(seconds),
          },
          'verify progress',
        );
      }
    },
    finish() {
      if (tty && drawn) options.stream.write('\n');
    },
  };
}
