/**
 * Runs `parity` commands the way an operator would: as child processes of the same build, with
 * the demo's environment. One-shot commands are awaited; services (cdc run, cache run) run in the
 * background until the demo stops them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { ParityError } from '../core/errors.js';
import { projectPath } from '../core/project-root.js';

const BIN = projectPath('services', 'cli', 'bin', 'parity.js');

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
  seconds: number;
}

export interface ParityRunner {
  /** Runs a command to completion; `tty` passes the terminal through (progress bars). */
  run(args: string[], options?: { tty?: boolean; allowFailure?: boolean }): Promise<CommandResult>;
  /** Starts a long-running command; its output goes to `logFile`. */
  start(args: string[], logFile: string): BackgroundCommand;
}

export interface BackgroundCommand {
  child: ChildProcess;
  stop(): Promise<number | null>;
}

export function createRunner(env: NodeJS.ProcessEnv): ParityRunner {
  return {
    run(args, options = {}) {
      const started = performance.now();
      return new Promise((resolve, reject) => {
        const child = spawn(process.execPath, [BIN, ...args], {
          env,
          stdio: options.tty ? ['ignore', 'pipe', 'inherit'] : ['ignore', 'pipe', 'pipe'],
        });
        let stdout = '';
        let stderr = '';
        child.stdout?.on('data', (c) => (stdout += String(c)));
        child.stderr?.on('data', (c) => (stderr += String(c)));
        child.on('error', reject);
        child.on('exit', (code) => {
          const result = { code: code ?? 1, stdout, stderr, seconds: (performance.now() - started) / 1000 };
          if (result.code !== 0 && !options.allowFailure) {
            reject(
              new ParityError(
                'PARITY_INTERNAL',
                `parity ${args.join(' ')} exited ${result.code}:\n${(stderr || stdout).trim().split('\n').slice(-15).join('\n')}`,
              ),
            );
          } else resolve(result);
        });
      });
    },
    start(args, logFile) {
      const log: WriteStream = createWriteStream(logFile, { flags: 'a' });
      const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout?.pipe(log);
      child.stderr?.pipe(log);
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      return {
        child,
        async stop() {
          if (child.exitCode === null) child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
          const code = await exited;
          clearTimeout(timer);
          log.end();
          return code;
        },
      };
    },
  };
}
