/**
 * The secured-connection examples that docker-compose.yml and deploy/k8s carry as comments (issue 16)
 * stay usable: uncommented, the manifests still pass the Kubernetes API schemas (kubernetes-models),
 * every secret a pod reads is a key of the parity-secrets Secret, the CA volume is mounted, and every
 * variable the compose examples require is listed in .env.example. No cluster or Docker engine needed.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

/** Example lines: list items, their continuation keys, and empty Secret values, each behind `# `. */
const EXAMPLE_LINE = /^(\s*)# (?=- name: |- \{ name: | {2}valueFrom: | {2}secret: |[A-Z_]+: ""$)/;
const uncomment = (text: string) =>
  text
    .split('\n')
    .map((line) => line.replace(EXAMPLE_LINE, '$1'))
    .join('\n');

interface Validatable {
  validate(): void;
}

async function validate(doc: { apiVersion: string; kind: string }): Promise<void> {
  const [group, version] = doc.apiVersion.includes('/') ? doc.apiVersion.split('/') : ['', doc.apiVersion];
  const module = await import(`kubernetes-models/${group ? `${group}/` : ''}${version}/${doc.kind}`);
  const Model = (module[doc.kind] ?? module.default) as new (data: unknown) => Validatable;
  new Model(doc).validate();
}

describe('deploy/k8s secured examples, uncommented', () => {
  const config = parseAllDocuments(uncomment(read('deploy/k8s/config.yaml'))).map((d) => d.toJS());
  const cdc = parseAllDocuments(uncomment(read('deploy/k8s/cdc.yaml'))).map((d) => d.toJS());
  const secret = config.find((d) => d.kind === 'Secret');
  const deployment = cdc.find((d) => d.kind === 'Deployment');

  test('the uncommenting is real: the Secret gains the secured keys, the pod the secret refs and the CA volume', () => {
    expect(Object.keys(secret.stringData)).toEqual(expect.arrayContaining(['KAFKA_PASSWORD', 'REDIS_PASSWORD', 'REGISTRY_PASSWORD']));
    const container = deployment.spec.template.spec.containers[0];
    expect(container.env.map((e: { name: string }) => e.name)).toEqual(expect.arrayContaining(['KAFKA_PASSWORD', 'REGISTRY_PASSWORD']));
    expect(container.volumeMounts.map((m: { name: string }) => m.name)).toContain('tls');
  });

  test('the manifests pass the Kubernetes schemas', async () => {
    for (const doc of [...config, ...cdc]) await expect(validate(doc)).resolves.toBeUndefined();
  });

  test('every secretKeyRef names a key of parity-secrets, every mount a volume; TLS in the example URL', () => {
    const spec = deployment.spec.template.spec;
    for (const e of spec.containers[0].env as {
      name: string;
      value?: string;
      valueFrom?: { secretKeyRef?: { name: string; key: string } };
    }[]) {
      const ref = e.valueFrom?.secretKeyRef;
      if (ref) {
        expect(ref.name).toBe('parity-secrets');
        expect(Object.keys(secret.stringData), `${e.name}`).toContain(ref.key);
      }
    }
    const volumes = (spec.volumes as { name: string }[]).map((v) => v.name);
    for (const m of spec.containers[0].volumeMounts as { name: string }[]) expect(volumes).toContain(m.name);
    const source = (spec.containers[0].env as { name: string; value?: string }[]).filter((e) => e.name === 'PARITY_SOURCE_URL').at(-1);
    expect(source?.value).toMatch(/sslmode=verify-full&sslrootcert=\/certs\//);
  });
});

describe('docker-compose.yml secured examples, uncommented', () => {
  const text = read('docker-compose.yml');
  const block = text.slice(text.indexOf('x-parity-env:'), text.indexOf('x-parity-service:'));
  const examples = block.split('\n').filter((l) => /^ {2}# [A-Z_]+: /.test(l));
  const env = parse(
    `x:\n${examples.map((l) => l.replace('# ', '')).join('\n')}\n`,
    // The examples replace settings of the same name (PARITY_SOURCE_URL, ...): the last one wins.
    { uniqueKeys: false },
  ).x as Record<string, string>;

  test('there are examples for Kafka (SCRAM, API keys), PostgreSQL TLS, Redis TLS and the registry', () => {
    expect(Object.keys(env)).toEqual(
      expect.arrayContaining([
        'KAFKA_PASSWORD',
        'KAFKA_API_KEY',
        'KAFKA_API_SECRET',
        'PARITY_SOURCE_URL',
        'PARITY_REDIS_URL',
        'REGISTRY_PASSWORD',
      ]),
    );
    expect(env.PARITY_SOURCE_URL).toMatch(/sslmode=verify-full&sslrootcert=\/certs\//);
    expect(env.PARITY_REDIS_URL).toMatch(/^rediss:\/\//);
    expect(env.PARITY_REGISTRY_URL).toMatch(/^https:\/\//);
  });

  test('every required variable is listed in .env.example, and no example holds a literal secret', () => {
    const listed = read('.env.example');
    for (const value of Object.values(env)) {
      for (const m of value.matchAll(/\$\{([A-Z_]+):\?/g)) expect(listed, m[1]).toMatch(new RegExp(`^(# )?${m[1]}=$`, 'm'));
    }
    for (const [key, value] of Object.entries(env)) {
      if (/PASSWORD|SECRET|KEY/.test(key)) expect(value, key).toMatch(/^\$\{[A-Z_]+:\?/);
    }
  });
});
