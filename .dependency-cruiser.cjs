/**
 * The layering rule, executable (`npm run lint:deps`, run by CI): core depends on nothing of ours,
 * connectors on core, services on connectors and core, the CLI on everything. A cycle or an arrow
 * pointing up fails the build.
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
