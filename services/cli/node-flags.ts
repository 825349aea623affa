/**
 * The V8 flags parity's processes run with, in one place: the bin's shebang, `npm run parity`, the Docker
 * image and the Kubernetes manifests carry the same list (test/unit/cli/node-flags.test.ts checks them).
 *
 * `--max-semi-space-size=16`: Node 24 sizes the young generation from the machine's memory (64 MiB per
 * semi-space, 134 MB of new space on a 24 GiB host), and a CDC connector that allocates each event's objects
 * at tens of thousands of events per second grows it to the maximum: that alone was ~100 MB of its peak RSS
 * under `npm run bench:cdc`, for no throughput we could measure (events per CPU second within noise at 16
 * and 64). 16 MiB is Node 20's default.
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=16'];
