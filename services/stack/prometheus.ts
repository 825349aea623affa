/**
 * Prometheus and promtool for the observability tests and the CI's rule checks: Debian's
 * `prometheus` package (which brings promtool), installed when missing the way the stack installs
 * redis-server (apt-get as root, else through `sudo -n`).
 */
import { ParityError } from '../core/errors.js';
import { run } from './process.js';

function which(binary: string): string | null {
  const found = run('sh', ['-c', `command -v ${binary}`]);
  return found.status === 0 ? found.stdout.trim() : null;
}

/** Paths of the `prometheus` and `promtool` binaries, installing Debian's package when either is missing. */
export function ensurePrometheus(): { prometheus: string; promtool: string } {
  let prometheus = which('prometheus');
  let promtool = which('promtool');
  if (prometheus && promtool) return { prometheus, promtool };
  // --no-install-recommends: the package recommends the node exporter, which the tests do not need.
  const script = 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus';
  const install = process.getuid?.() === 0 ? run('sh', ['-c', script]) : run('sudo', ['-n', 'sh', '-c', script]);
  prometheus = which('prometheus');
  promtool = which('promtool');
  if (install.status !== 0 || !prometheus || !promtool) {
    throw new ParityError(
      'PARITY_DEPENDENCY_MISSING',
      `prometheus/promtool are missing and could not be installed: ${install.stderr.split('\n').slice(-5).join('\n')}`,
      {
        hint: 'run: sudo apt-get install prometheus',
      },
    );
  }
  return { prometheus, promtool };
}
