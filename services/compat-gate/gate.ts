import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { listTopics } from '../../connectors/kafka-sink/admin.js';
import type { KafkaClients } from '../core/clients.js';
import { ParityError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { LoadedSpec } from '../core/spec.js';
import {
  checkCompatibility,
  parseSchema,
  readerWriterIncompatibilities,
  type CompatibilityResult,
  type ParsedSchema,
  type SchemaType,
} from './checker.js';
import type { Finding } from './findings.js';
import { parseLevel } from './levels.js';
import { checkLiveEvents, type LiveReport, type SampleOptions } from './live.js';
import type { CcompatClient } from './registry-client.js';
import { checkSubject, parseRegistered, referenceTexts, REGISTRY_TYPES, registeredVersions, type SubjectCheck } from './registry.js';
import { checkSemanticChanges, type SubjectSchemas } from './semantic.js';

/**
 * `parity compat gate`: every event-schema check the migration spec asks for, in one verdict.
 * For each subject: the candidate against the registered versions (registry and local checker, the
 * level set explicitly), each consumer's reader schema against the schema about to be produced, and
 * the live events on the topic against each consumer; then the semantic-changes rule across subjects.
 * It passes only with no finding at all.
 */

export interface GateDeps {
  registry: CcompatClient;
  /** Live-event checks run only with a Kafka client. */
  kafka?: KafkaClients;
  sample?: SampleOptions;
  logger?: Logger;
}

/** One line of the subjects x consumers table. */
export interface GateRow {
  subject: string;
  /** A consumer name, or "(registry)" for the subject's own schema check. */
  consumer: string;
  check: 'registry' | 'schema' | 'live' | 'semantic';
  verdict: 'ok' | 'FAIL' | 'skipped';
  detail: string;
}

export interface SubjectReport {
  subject: string;
  level: string;
  type: SchemaType;
  candidate: string | null;
  versions: number[];
  registry?: SubjectCheck;
  /** Without a candidate: the latest version checked locally against the earlier ones. */
  history?: CompatibilityResult;
  live?: LiveReport;
}

/** The gate's outcome: printed as a table, stored as `compat` evidence, read by the contract gate. */
export interface GateReport {
  migration: string;
  passed: boolean;
  checkedAt: string;
  subjects: SubjectReport[];
  rows: GateRow[];
  findings: Finding[];
}

async function readRelative(specFile: string, path: string, what: string): Promise<string> {
  const full = resolve(dirname(specFile), path);
  try {
    return await readFile(full, 'utf8');
  } catch (err) {
    throw new ParityError('PARITY_BAD_INPUT', `cannot read ${what} ${full}: ${err instanceof Error ? err.message : String(err)}`, {
      hint: 'schema paths in the spec are relative to the spec file',
      cause: err,
    });
  }
}

/** TopicNameStrategy: subject `<topic>-value` belongs to `<topic>`. */
export function topicOfSubject(subject: string): string | undefined {
  return subject.endsWith('-value') ? subject.slice(0, -'-value'.length) : undefined;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** Runs the gate for a loaded spec. Bad schema files are PARITY_BAD_INPUT; everything else is a finding. */
export async function runCompatGate(loaded: LoadedSpec, deps: GateDeps): Promise<GateReport> {
  const { spec, file } = loaded;
  const rows: GateRow[] = [];
  const findings: Finding[] = [];
  const subjects: SubjectReport[] = [];
  const known: SubjectSchemas[] = [];
  let topics: Set<string> | undefined;
  if (deps.kafka) {
    topics = await listTopics(deps.kafka);
  }

  for (const entry of spec.events.subjects) {
    const level = parseLevel(entry.compatibility);
    const candidateText = entry.schema ? await readRelative(file, entry.schema, `candidate schema of ${entry.subject}`) : undefined;
    // Protobuf imports of the candidate and the readers resolve as the latest registered version's do.
    const latestRefs = entry.type === 'protobuf' ? ((await registeredVersions(deps.registry, entry.subject)).at(-1)?.references ?? []) : [];
    const refTexts = latestRefs.length > 0 ? await referenceTexts(deps.registry, latestRefs) : undefined;
    const candidate = candidateText === undefined ? undefined : parseSchema(entry.type, candidateText, refTexts);
    const consumers = await Promise.all(
      entry.consumers.map(async (c) => ({
        name: c.name,
        readerSchema: await readRelative(file, c.readerSchema, `reader schema of consumer ${c.name}`),
      })),
    );
    const report: SubjectReport = { subject: entry.subject, level, type: entry.type, candidate: entry.schema ?? null, versions: [] };
    subjects.push(report);

    // 1. The subject's own schema: the candidate against what is registered, registry and local.
    let upcoming: ParsedSchema | undefined = candidate;
    let registered: ParsedSchema[] = [];
    if (candidateText !== undefined) {
      const check = await checkSubject(deps.registry, { subject: entry.subject, type: entry.type, level, candidate: candidateText });
      report.registry = check;
      report.versions = check.versions;
      findings.push(...check.findings);
      const history = await registeredVersions(deps.registry, entry.subject);
      registered = await Promise.all(
        history.filter((h) => h.schemaType === REGISTRY_TYPES[entry.type]).map((h) => parseRegistered(deps.registry, entry.type, h)),
      );
      rows.push({
        subject: entry.subject,
        consumer: '(registry)',
        check: 'registry',
        verdict: check.compatible ? 'ok' : 'FAIL',
        detail: `${level} vs ${plural(check.versions.length, 'version')}: registry ${check.registry.compatible ? 'compatible' : 'incompatible'}, local ${check.local.compatible ? 'compatible' : `${plural(check.local.messages.length, 'incompatibility')}`}`,
      });
    } else {
      await deps.registry.setLevel(entry.subject, level);
      const history = (await registeredVersions(deps.registry, entry.subject)).filter((h) => h.schemaType === REGISTRY_TYPES[entry.type]);
      registered = await Promise.all(history.map((h) => parseRegistered(deps.registry, entry.type, h)));
      report.versions = history.map((h) => h.version);
      upcoming = registered[registered.length - 1];
      if (upcoming) {
        const result = checkCompatibility({
          type: entry.type,
          level,
          schema: upcoming,
          previous: registered.slice(0, -1),
          versionLabels: report.versions.slice(0, -1),
        });
        report.history = result;
        if (!result.compatible) {
          findings.push({
            kind: 'incompatible',
            subject: entry.subject,
            message: `the latest registered version of ${entry.subject} is not ${level} compatible with the earlier ones`,
            details: { messages: result.messages },
          });
        }
        rows.push({
          subject: entry.subject,
          consumer: '(registry)',
          check: 'registry',
          verdict: result.compatible ? 'ok' : 'FAIL',
          detail: `no candidate; latest of ${plural(registered.length, 'version')} checked locally under ${level}`,
        });
      } else {
        rows.push({
          subject: entry.subject,
          consumer: '(registry)',
          check: 'registry',
          verdict: 'skipped',
          detail: 'no candidate schema and nothing registered',
        });
      }
    }
    known.push({ subject: entry.subject, ...(candidate ? { candidate } : {}), registered });

    // 2. Each consumer's reader schema against the schema about to be produced.
    for (const consumer of consumers) {
      if (!upcoming) {
        rows.push({
          subject: entry.subject,
          consumer: consumer.name,
          check: 'schema',
          verdict: 'skipped',
          detail: 'no schema to read yet',
        });
        continue;
      }
      const reader = parseSchema(entry.type, consumer.readerSchema, refTexts);
      const problems = readerWriterIncompatibilities(reader, upcoming);
      const what = candidate ? 'the candidate' : 'the latest version';
      if (problems.length > 0) {
        findings.push({
          kind: 'consumer-cannot-read',
          subject: entry.subject,
          consumer: consumer.name,
          message: `consumer ${consumer.name} cannot read ${what} of ${entry.subject}: ${problems[0]?.message ?? ''}`,
          details: { source: 'schema', problems },
        });
      }
      rows.push({
        subject: entry.subject,
        consumer: consumer.name,
        check: 'schema',
        verdict: problems.length ? 'FAIL' : 'ok',
        detail: problems.length
          ? `${plural(problems.length, 'problem')} reading ${what}, first at ${problems[0]?.location}`
          : `reads ${what}`,
      });
    }

    // 3. Live events on the topic, per consumer and per writer version.
    const topic = topicOfSubject(entry.subject);
    const skipLive = (detail: string): void => {
      for (const consumer of consumers)
        rows.push({ subject: entry.subject, consumer: consumer.name, check: 'live', verdict: 'skipped', detail });
    };
    if (!deps.kafka) skipLive('live checks disabled');
    else if (!topic) skipLive('subject does not follow TopicNameStrategy (<topic>-value); topic unknown');
    else if (!topics?.has(topic)) skipLive(`topic ${topic} does not exist yet`);
    else if (consumers.length > 0) {
      const live = await checkLiveEvents({
        kafka: deps.kafka,
        registry: deps.registry,
        topic,
        subject: entry.subject,
        consumers,
        ...(deps.sample ? { sample: deps.sample } : {}),
      });
      report.live = live;
      findings.push(...live.findings.map((f) => ({ ...f, subject: entry.subject })));
      for (const c of live.consumers) {
        const versions = c.byVersion
          .map(
            (v) =>
              `${v.embeddedSchema !== undefined ? `connect-json#${-v.schemaId}` : `v${v.version ?? `id${v.schemaId}`}`} ${v.readable}/${v.events}`,
          )
          .join(', ');
        rows.push({
          subject: entry.subject,
          consumer: c.consumer,
          check: 'live',
          verdict: c.failed > 0 ? 'FAIL' : 'ok',
          detail: `${c.readable} readable, ${c.failed} failed of ${live.sampled - live.tombstones} sampled${versions ? ` (${versions})` : ''}${live.complete ? '' : ' (sample incomplete)'}`,
        });
      }
    }
  }

  // 4. Changes of meaning must arrive the way the spec declares.
  const semantic = checkSemanticChanges(spec.events.semanticChanges, known);
  findings.push(...semantic);
  for (const change of spec.events.semanticChanges) {
    const failed = semantic.filter((f) => (f.details as { field?: string } | undefined)?.field === change.field);
    rows.push({
      subject: '(semantic)',
      consumer: change.field,
      check: 'semantic',
      verdict: failed.length ? 'FAIL' : 'ok',
      detail: failed.length
        ? (failed[0]?.message ?? '')
        : `arrives via ${change.via}${change.newField ? ` ${change.newField}` : change.newSubject ? ` ${change.newSubject}` : change.markerField ? ` ${change.markerField}` : ''}`,
    });
  }

  return { migration: spec.name, passed: findings.length === 0, checkedAt: new Date().toISOString(), subjects, rows, findings };
}

/** The subjects x consumers x verdict table, for people. */
export function formatGateTable(report: GateReport): string {
  const header: GateRow = {
    subject: 'SUBJECT',
    consumer: 'CONSUMER',
    check: 'CHECK' as never,
    verdict: 'VERDICT' as never,
    detail: 'DETAIL',
  };
  const all = [header, ...report.rows];
  const w = (key: keyof GateRow): number => Math.max(...all.map((r) => String(r[key]).length));
  const widths = { subject: w('subject'), consumer: w('consumer'), check: w('check'), verdict: w('verdict') };
  const lines = all.map(
    (r) =>
      `${r.subject.padEnd(widths.subject)}  ${r.consumer.padEnd(widths.consumer)}  ${r.check.padEnd(widths.check)}  ${r.verdict.padEnd(widths.verdict)}  ${r.detail}`,
  );
  lines.push('');
  lines.push(
    report.passed
      ? `compat gate PASSED for ${report.migration}`
      : `compat gate FAILED for ${report.migration}: ${plural(report.findings.length, 'finding')}`,
  );
  for (const f of report.findings) lines.push(`  - [${f.kind}] ${f.message}`);
  return `${lines.join('\n')}\n`;
}
