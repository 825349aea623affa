/**
 * Every manifest in deploy/k8s validated against the Kubernetes API schemas (kubernetes-models,
 * generated from the OpenAPI specification; the PodMonitor against the Prometheus Operator's CRD
 * schema), with a broken copy to show the check bites. No cluster is needed.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { ROOT } from './promql-usage.js';

interface Validatable {
  validate(): void;
}
type ModelClass = new (data: unknown) => Validatable;

const dir = join(ROOT, 'deploy/k8s');
const manifests = readdirSync(dir)
  .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
  .flatMap((file) =>
    parseAllDocuments(readFileSync(join(dir, file), 'utf8')).map((d) => ({
      file,
      doc: d.toJS() as { apiVersion: string; kind: string; metadata: { name: string } },
    })),
  );

async function model(apiVersion: string, kind: string): Promise<ModelClass> {
  const [group, version] = apiVersion.includes('/') ? (apiVersion.split('/') as [string, string]) : ['', apiVersion];
  const module =
    group === 'monitoring.coreos.com'
      ? await import(`@kubernetes-models/prometheus-operator/${group}/${version}/${kind}`)
      : await import(`kubernetes-models/${group ? `${group}/` : ''}${version}/${kind}`);
  return (module[kind] ?? module.default) as ModelClass;
}

describe('deploy/k8s against the Kubernetes schemas', () => {
  test.each(manifests.map((m) => [`${m.file}: ${m.doc.kind} ${m.doc.metadata.name}`, m] as const))('%s', async (_name, m) => {
    const Model = await model(m.doc.apiVersion, m.doc.kind);
    expect(() => new Model(m.doc).validate()).not.toThrow();
  });

  test('a broken manifest is refused (the check is live)', async () => {
    const deployment = structuredClone(manifests.find((m) => m.doc.kind === 'Deployment')!.doc) as any;
    deployment.spec.replicas = 'two';
    delete deployment.spec.template.spec.containers[0].livenessProbe.httpGet.port;
    const Model = await model('apps/v1', 'Deployment');
    expect(() => new Model(deployment).validate()).toThrow(/replicas must be integer/);
  });
});
