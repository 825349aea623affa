/**
 * The layering rule, executable (`npm run lint:deps`, run by CI before the tests): core depends on
 * nothing of ours, connectors on core, services on connectors and core, the CLI on everything. A cycle
 * or an arrow pointing up fails the build.
 *
 * Between services, the design allows few arrows (decided in issue 15; change them here, with the why):
 * - services/cli and services/demo compose everything (the demo never imports the CLI);
 * - services/client is the application library: it re-exports the flags reader and routing
 *   (services/coordinator) and the cache reader (services/cache-versioner), and only the CLI, the demo
 *   and the client itself import it: a service needing flags imports the coordinator, their owner;
 * - services/coordinator is the control plane (flags, locks, phases): the services that obey it at run
 *   time (backfill, reconciler: kill switches; reverse-sync: cutover and rollback) and the status page read it; it imports no other
 *   service (the contract gate is injected by the CLI wiring);
 * - every other service (cdc, cache-versioner, compat-gate, stack, ...) imports only core and connectors.
 */
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      severity: 'error',
      comment: 'A cycle makes two modules one; break it by moving the shared piece down a layer.',
      from: { path: '^(services|connectors)/' },
      to: { circular: true },
    },
    {
      name: 'core-depends-on-nothing-of-ours',
      severity: 'error',
      comment: 'services/core is the shared kernel: it may import only libraries and itself.',
      from: { path: '^services/core/' },
      to: { path: '^(services/(?!core/)|connectors/)' },
    },
    {
      name: 'connectors-depend-on-core-only',
      severity: 'error',
      comment: 'Connectors sit on the kernel; they never reach into a service or into another connector.',
      from: { path: '^connectors/([^/]+)/' },
      to: { path: ['^services/(?!core/)', '^connectors/'], pathNot: '^connectors/$1/' },
    },
    {
      name: 'services-never-import-the-cli',
      severity: 'error',
      comment: 'The CLI composes the services; a service importing it points up the pyramid.',
      from: { path: '^services/(?!cli/)' },
      to: { path: '^services/cli/' },
    },
    {
      name: 'only-entry-points-import-the-client',
      severity: 'error',
      comment: 'services/client is for applications, the CLI and the demo; a service reads what the client re-exports from its owner.',
      from: { path: '^(services/(?!(cli|demo|client)/)|connectors/)' },
      to: { path: '^services/client/' },
    },
    {
      name: 'services-do-not-import-each-other',
      severity: 'error',
      comment: 'A service imports core, connectors, itself and (for its flags or locks) the coordinator; anything else it needs moves down a layer.',
      from: { path: '^services/(?!cli/|demo/|client/)([^/]+)/' },
      to: { path: '^services/[^/]+/', pathNot: ['^services/(core|coordinator)/', '^services/$1/'] },
    },
    {
      name: 'only-control-plane-readers-import-the-coordinator',
      severity: 'error',
      comment:
        'The coordinator is read by the services it steers at run time (backfill, reconciler, reverse-sync: cutover and rollback flip its flags under its lock), the status page and the client.',
      from: { path: '^services/(?!(cli|demo|client|backfill|reconciler|reverse-sync|status|coordinator)/)' },
      to: { path: '^services/coordinator/' },
    },
    {
      name: 'coordinator-imports-no-service',
      severity: 'error',
      comment: 'The coordinator gets what it needs from other services injected (the contract gate, by the CLI wiring).',
      from: { path: '^services/coordinator/' },
      to: { path: '^services/(?!core/|coordinator/)' },
    },
    {
      name: 'no-test-code-in-production',
      severity: 'error',
      from: { path: '^(services|connectors)/' },
      to: { path: '^test/' },
    },
    {
      name: 'no-private-dependency-internals',
      severity: 'error',
      comment: 'Libraries through their public API only: no deep imports into a package\'s private folders.',
      from: { path: '^(services|connectors)/' },
      to: { path: 'node_modules/[^/]+/(src|lib|dist)/.*(internal|private)' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules|\\.parity)/' },
    tsPreCompilationDeps: true,
    // TypeScript 7's compiler API is not what dependency-cruiser reads; swc parses the sources instead.
    parser: 'swc',
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'], extensions: ['.ts', '.js'] },
  },
};
