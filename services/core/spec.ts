/**
 * The migration spec: one YAML file per migration, validated once at start-up. Everything after
 * `loadSpec` receives a typed, already-valid `Spec`.
 */
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { parseDocument, isMap, isSeq, type Document } from 'yaml';
import { z } from 'zod';
import { ParityError } from './errors.js';
import { changeTopic } from './change-event.js';
import { REDACTED, redactUrl, registerCredentials, registerSecret } from './secrets.js';
import { kafkaSecuritySchema, literalKafkaSecrets } from './kafka-security.js';
import { literalConnectionSecrets, pgTlsProblems, redisSpecSchema, registrySpecSchema } from './connection-security.js';
import { checkMappingExpression, checkReadOnlyQuery, columnsRead, parseStatements, type SqlProblem } from './sql-parse.js';
import { parseRegexList } from './regex-list.js';

/**
 * PostgreSQL truncates identifiers to 63 bytes (NAMEDATALEN - 1) without a word, so two long names
 * can silently become one: the limit is counted in UTF-8 bytes, not characters.
 */
export const MAX_IDENTIFIER_BYTES = 63;
const IDENTIFIER_TOO_LONG = `PostgreSQL names are at most ${MAX_IDENTIFIER_BYTES} bytes (UTF-8: accented letters take 2 bytes, many others 3); longer names are truncated silently and can collide: shorten it`;

const identifier = z
  .string()
  .min(1)
  // max() gives editors the bound through the JSON Schema; the refine counts bytes (one message per name).
  .max(MAX_IDENTIFIER_BYTES, IDENTIFIER_TOO_LONG)
  .regex(/^[^\u0000]+$/, 'must not contain NUL')
  .refine((s) => s.length > MAX_IDENTIFIER_BYTES || Buffer.byteLength(s, 'utf8') <= MAX_IDENTIFIER_BYTES, { message: IDENTIFIER_TOO_LONG });

/** Replication slot names: PostgreSQL accepts only lower-case letters, digits and "_" (at most 63). */
const slotName = z
  .string()
  .regex(
    /^[a-z0-9_]+$/,
    'replication slot names may contain only lower-case letters, digits and "_" (PostgreSQL refuses "-", quotes and upper case), e.g. parity_orders',
  )
  .max(MAX_IDENTIFIER_BYTES, `replication slot names are at most ${MAX_IDENTIFIER_BYTES} characters`);

/** Publication names: plain identifiers, no quotes (they travel quoted inside the pgoutput option string). */
const publicationName = identifier.refine((s) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(s), {
  message:
    'a publication name is a plain identifier: letters, digits and "_", starting with a letter or "_" (no "-", quotes or spaces), e.g. parity_orders',
});

const slug = z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'use lower-case letters, digits, "-" and "_", starting with a letter or digit');

/** A PostgreSQL connection URL, e.g. postgres://user@127.0.0.1:54329/shop. */
const connectionUrl = z
  .string()
  .regex(/^postgres(ql)?:\/\//, 'write a PostgreSQL URL such as postgres://user@127.0.0.1:5432/db (use ${VAR} for the password)')
  // TLS (sslmode up to verify-full, sslrootcert: the CA's PEM file) rides in the URL, as with libpq.
  .superRefine((url, ctx) => {
    for (const message of pgTlsProblems(url)) ctx.addIssue({ code: 'custom', message });
  });

/**
 * SQL text from the spec. Its shape is checked with PostgreSQL's parser in the spec's superRefine
 * (a mapping: one scalar expression; a probe: one read-only SELECT), where `allowFunctions` is known.
 */
const sqlExpression = z.string().min(1);

export const COMPATIBILITY_LEVELS = [
  'BACKWARD',
  'BACKWARD_TRANSITIVE',
  'FORWARD',
  'FORWARD_TRANSITIVE',
  'FULL',
  'FULL_TRANSITIVE',
  'NONE',
] as const;
export const compatibilityLevel = z.enum(COMPATIBILITY_LEVELS);
export type CompatibilityLevel = z.infer<typeof compatibilityLevel>;

const tableRef = z.strictObject({
  /** Connection URL; `${VAR}` interpolation is the way to pass secrets. */
  database: connectionUrl,
  schema: identifier.default('public'),
  table: identifier,
});

const target = z.discriminatedUnion('kind', [
  z.strictObject({
    /** The new columns live in the source table itself (expand with new columns). */
    kind: z.literal('same-table'),
  }),
  z.strictObject({
    /** A shadow table in the same database. */
    kind: z.literal('shadow-table'),
    schema: identifier.default('public'),
    table: identifier,
  }),
  z.strictObject({
    /** Another PostgreSQL-wire database. */
    kind: z.literal('other-database'),
    database: connectionUrl,
    schema: identifier.default('public'),
    table: identifier,
  }),
]);

/** True when the reconciler's Intl conversions accept `zone` (the run would fail on it otherwise). */
function isKnownTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

const normalize = z
  .strictObject({
    /** Digits after the decimal point kept for timestamps/times when comparing (0-6). */
    timestampPrecision: z.number().int().min(0).max(6).default(6),
    timestampRounding: z.enum(['truncate', 'round']).default('truncate'),
    /** Treat NULL and '' as equal. */
    nullEqualsEmpty: z.boolean().default(false),
    /** Significant digits for float comparisons (float4 has ~6, float8 ~15). */
    floatDigits: z.number().int().min(1).max(17).default(15),
    /** Strip trailing blanks of char(n) values. */
    trimChar: z.boolean().default(true),
    /** Compare timestamptz and timestamp in this zone (an IANA name; the reconciler converts with Intl). */
    timeZone: z.string().refine(isKnownTimeZone, 'unknown time zone; write an IANA name such as UTC or Europe/Paris').default('UTC'),
  })
  .prefault({});

/** A Debezium include/exclude list: comma-separated regular expressions (regex-list.ts). */
const regexList = z.string().superRefine((text, ctx) => {
  try {
    parseRegexList(text);
  } catch (err) {
    ctx.addIssue({
      code: 'custom',
      message: `${(err as Error).message}; write comma-separated regular expressions, e.g. "audit\\..*,outbox"`,
    });
  }
});

/**
 * Debezium's PostgreSQL connector options, under Debezium's own (dotted) names and with its defaults
 * (`cdc.encoding: debezium`; services/cdc/README.md says what each does).
 */
const debeziumOptions = z
  .strictObject({
    'decimal.handling.mode': z.enum(['precise', 'double', 'string']).default('precise'),
    'time.precision.mode': z.enum(['adaptive', 'adaptive_time_microseconds', 'connect']).default('adaptive'),
    'binary.handling.mode': z.enum(['bytes', 'base64', 'base64-url-safe', 'hex']).default('bytes'),
    'interval.handling.mode': z.enum(['numeric', 'string']).default('numeric'),
    'hstore.handling.mode': z.enum(['json', 'map']).default('json'),
    'money.fraction.digits': z.number().int().min(0).max(20).default(2),
    'include.unknown.datatypes': z.boolean().default(false),
    'tombstones.on.delete': z.boolean().default(true),
    /** Operations not written: c, u, d, t (none: write every one). Debezium's default skips truncates. */
    'skipped.operations': z
      .string()
      .regex(/^(none|[cudt](,[cudt])*)$/, 'write a comma-separated list of c, u, d, t (e.g. "t"), or "none"')
      .default('t'),
    'provide.transaction.metadata': z.boolean().default(false),
    'field.name.adjustment.mode': z.enum(['none', 'avro', 'avro_unicode']).default('none'),
    /** Debezium 3's `__debezium.context.*` headers (logical name, task id, connector name, run id) on every event. */
    'extended.headers.enabled': z.boolean().default(true),
    /**
     * Logical decoding messages written to `<topicPrefix>.message`: only the prefixes matching one of these
     * comma-separated regular expressions (whole prefix, case-insensitive), or every prefix but those.
     * Neither set: every prefix (Debezium's default). parity's own prefixes (`parity.*`) are never written.
     */
    'message.prefix.include.list': regexList.optional(),
    'message.prefix.exclude.list': regexList.optional(),
  })
  .refine((o) => o['message.prefix.include.list'] === undefined || o['message.prefix.exclude.list'] === undefined, {
    message: 'message.prefix.include.list and message.prefix.exclude.list cannot both be set (as in Debezium): keep one',
    path: ['message.prefix.exclude.list'],
  })
  .prefault({});

const cdc = z.strictObject({
  slot: slotName,
  publication: publicationName,
  /** Topics are `<topicPrefix>.<schema>.<table>`. */
  topicPrefix: z.string().regex(/^[a-zA-Z0-9._-]+$/, 'Kafka topic names allow letters, digits, ".", "_" and "-"'),
  /** Extra tables to stream besides the source table, as schema.table. */
  tables: z.array(z.string().regex(/^[^.]+\.[^.]+$/, 'write schema.table')).default([]),
  /**
   * What the events carry: Debezium 3.x's encodings (default; Debezium consumers read them) or
   * parity's exact-text encoding (numeric and timestamps as exact strings; not Debezium-compatible).
   */
  encoding: z.enum(['debezium', 'exact-text']).default('debezium'),
  /** avro, json and protobuf go through the registry; connect-json is Kafka Connect's JsonConverter (debezium encoding). */
  format: z.enum(['avro', 'json', 'protobuf', 'connect-json']).default('avro'),
  debezium: debeziumOptions,
  snapshot: z.enum(['initial', 'never']).default('initial'),
  snapshotChunkRows: z.number().int().min(1).max(10_000_000).default(10_000),
  heartbeatIntervalSeconds: z.number().min(0).default(10),
  /** Partitions of each change topic; Kafka's own guidance keeps a topic well below a few thousand. */
  partitions: z.number().int().min(1).max(1_000).default(3),
  /** Record batch compression of the CDC's produce path (none, gzip or zstd; zstd needs Kafka 2.1+). */
  compression: z.enum(['none', 'gzip', 'zstd']).default('none'),
  /** Status server port (same as status.ports.cdc; --status-port and PARITY_STATUS_PORT take precedence). */
  statusPort: z.number().int().min(0).max(65535).optional(),
});

const throttle = z.strictObject({
  /** Pause while standby replay lag or CDC slot lag exceeds this (gh-ost's --max-lag-millis is 1.5 s). */
  maxLagSeconds: z.number().positive().default(1.5),
  /** Pause while more than this many backends are active; abort above `abortActive`. */
  maxActive: z.number().int().positive().optional(),
  abortActive: z.number().int().positive().optional(),
  probe: z
    .strictObject({
      sql: sqlExpression.describe('a read-only query run against the source'),
      maxP99Ms: z.number().positive(),
      intervalMs: z.number().int().positive().default(200),
      window: z.number().int().positive().default(50),
    })
    .optional(),
  httpProbe: z.string().url().optional(),
  flagFile: z.string().optional(),
  /**
   * The default throttle: short batches with a sleep after each (a duty cycle), moved by a latency
   * guard. `pace: { enabled: false }` runs batches back to back at `targetBatchSeconds` (full speed).
   */
  pace: z
    .strictObject({
      enabled: z.boolean().default(true),
      /**
       * WAL per batch while paced: an OLTP commit landing during a batch flushes the batch's WAL
       * before its own, so this bounds what a batch can add to a commit. Batches are sized to the
       * smaller of this and `batchSeconds`.
       */
      batchWalBytes: z.number().int().min(8192).default(65_536),
      /** Batch duration cap while paced (instead of `targetBatchSeconds`), for mappings heavy on CPU but light on WAL. */
      batchSeconds: z.number().positive().max(60).default(0.05),
      /**
       * What the sleeps keep: `wal-rate` (the process's WAL bytes per second, each batch's WAL
       * measured on the server) or `duty-cycle` (the share of wall time each worker spends in batches).
       */
      mode: z.enum(['wal-rate', 'duty-cycle']).default('wal-rate'),
      /** wal-rate: the process's starting WAL budget in bytes/s; the guard and the health controller move it within [min, max]. */
      walBytesPerSecond: z
        .number()
        .int()
        .min(65_536)
        .default(2 * 1024 * 1024),
      minWalBytesPerSecond: z
        .number()
        .int()
        .min(65_536)
        .default(256 * 1024),
      maxWalBytesPerSecond: z
        .number()
        .int()
        .min(65_536)
        .default(32 * 1024 * 1024),
      /** wal-rate: what a clean judgement window adds to the budget (a cut halves it). */
      walIncreaseBytesPerSecond: z
        .number()
        .int()
        .min(1024)
        .default(1024 * 1024),
      /**
       * Commit batches with `synchronous_commit = off` when the batch and its checkpoint commit in one
       * transaction (a crash loses both together, so the resume stays exact); synchronous otherwise.
       */
      asynchronousCommit: z.boolean().default(true),
      /**
       * The batches' own `wal_compression` (SET LOCAL; services/backfill/wal-compression.ts): `auto`
       * compresses their full-page images with lz4 (or pglz) when the server's setting is off and the
       * role may set it; `server` leaves the server's setting; a method insists on it.
       */
      walCompression: z.enum(['server', 'auto', 'pglz', 'lz4', 'zstd']).default('auto'),
      /** The health controller (WAL rate, requested checkpoints, replica lag, sessions vs CPUs) moves the pace; false: only the latency guard does. */
      healthSignals: z.boolean().default(true),
      /** Let the health controller take workers out of service (and back) from the database's signals. */
      scaleWorkers: z.boolean().default(true),
      /** CPUs of the database server, for the active-sessions signal (default: this host's CPUs). */
      databaseCpus: z.number().int().positive().optional(),
      /** Pause when the server's WAL rate (all writers) exceeds this, bytes/s (default: no limit). */
      maxServerWalBytesPerSecond: z.number().int().positive().optional(),
      /** Share of wall time each worker spends in batches at the start; gh-ost's --nice-ratio r is 1/(1+r). */
      dutyCycle: z.number().gt(0).max(1).default(0.02),
      /** The guard moves the duty cycle within [minDutyCycle, maxDutyCycle]. */
      minDutyCycle: z.number().gt(0).max(1).default(0.01),
      maxDutyCycle: z.number().gt(0).max(1).default(0.04),
      /** What a clean judgement window adds to the duty cycle (a cut halves it). */
      increaseStep: z.number().gt(0).max(1).default(0.005),
      latencyGuard: z
        .strictObject({
          enabled: z.boolean().default(true),
          /** commit: `SELECT txid_current()` in its own transaction (a commit record flushed like an OLTP commit's); read: `SELECT 1`. */
          probe: z.enum(['commit', 'read']).default('commit'),
          /** A read-only query like the application's to probe with instead (e.g. a point read of the hot table). */
          sql: sqlExpression.describe('a read-only query run against the source').optional(),
          intervalMs: z.number().int().min(5).default(50),
          /** Samples per judgement (and in the p99 shown). */
          window: z.number().int().min(10).max(10_000).default(100),
          /** Probing with the backfill held, before the first batch and at each re-measurement. */
          baselineSeconds: z.number().positive().default(10),
          /** Re-measure the baseline this often (0: never, except when over the limit at the minimum duty cycle). */
          rebaselineSeconds: z.number().min(0).default(300),
          /** Over the limit: probe p99 > baseline p99 x factor, and more than minExcessMs above it. */
          factor: z.number().gt(1).default(1.2),
          minExcessMs: z.number().min(0).default(0.2),
        })
        .prefault({}),
    })
    .prefault({})
    .refine((p) => p.minDutyCycle <= p.dutyCycle && p.dutyCycle <= p.maxDutyCycle, {
      message: 'need minDutyCycle <= dutyCycle <= maxDutyCycle',
      path: ['dutyCycle'],
    })
    .refine((p) => p.minWalBytesPerSecond <= p.walBytesPerSecond && p.walBytesPerSecond <= p.maxWalBytesPerSecond, {
      message: 'need minWalBytesPerSecond <= walBytesPerSecond <= maxWalBytesPerSecond',
      path: ['walBytesPerSecond'],
    })
    .refine((p) => !p.latencyGuard.enabled || p.latencyGuard.baselineSeconds * 1000 >= 20 * p.latencyGuard.intervalMs, {
      message: 'latencyGuard.baselineSeconds must cover at least 20 probes (baselineSeconds * 1000 >= 20 * intervalMs)',
      path: ['latencyGuard', 'baselineSeconds'],
    }),
});

const backfill = z
  .strictObject({
    batchSize: z.number().int().positive().default(1000),
    minBatchSize: z.number().int().positive().default(100),
    maxBatchSize: z.number().int().positive().max(10_000_000).default(50_000),
    targetBatchSeconds: z.number().positive().default(0.5),
    /** Each worker holds two database sessions; more than a few dozen only queue on the table's locks. */
    workers: z.number().int().positive().max(64).default(1),
    lockTimeoutMs: z.number().int().positive().default(1000),
    statementTimeoutMs: z.number().int().positive().default(30_000),
    /** Status and control server port (same as status.ports.backfill; a taken port falls back to a free one). */
    controlPort: z.number().int().min(0).max(65535).optional(),
    throttle: throttle.prefault({}),
  })
  .refine((b) => b.minBatchSize <= b.batchSize && b.batchSize <= b.maxBatchSize, {
    message: 'need minBatchSize <= batchSize <= maxBatchSize',
    path: ['batchSize'],
  })
  .refine(
    (b) => b.throttle.abortActive === undefined || b.throttle.maxActive === undefined || b.throttle.abortActive > b.throttle.maxActive,
    {
      message: 'throttle.abortActive must be above throttle.maxActive (pause first, abort later)',
      path: ['throttle', 'abortActive'],
    },
  );

const reconcile = z
  .strictObject({
    /** Rows per verification segment, read from the key index. */
    segmentRows: z.number().int().positive().default(100_000),
    /** Segments with at most this many rows are diffed row by row instead of bisected further. */
    bisectionThreshold: z.number().int().positive().default(2_000),
    jobs: z.number().int().positive().max(64).default(2),
    /** How long stream verification waits for the target to catch up before calling a mismatch. */
    retryWindowMs: z.number().int().min(0).default(5_000),
    repair: z.boolean().default(false),
    sampleKeys: z.number().int().min(0).default(20),
    /**
     * Type to compare a key column in on both sides, when the two sides' key types have no common
     * type of their own (e.g. integer on one side, text on the other): `{ id: text }`.
     */
    keyCasts: z
      .record(identifier, z.enum(['smallint', 'integer', 'bigint', 'numeric', 'text', 'uuid', 'date', 'timestamp', 'timestamptz']))
      .default({}),
    /** Without a CDC slot: a differing row is confirmed only after staying unchanged on both sides this long. */
    settleMs: z.number().int().min(0).default(5_000),
    /** Without a CDC slot: how long a differing row is rechecked at most (with backoff) before it is reported in flight (unsettled). */
    recheckBoundMs: z.number().int().positive().default(60_000),
  })
  .refine((r) => r.segmentRows > r.bisectionThreshold, {
    message: 'segmentRows must be above bisectionThreshold, or every segment is fetched row by row',
    path: ['segmentRows'],
  })
  .refine((r) => r.recheckBoundMs >= r.settleMs, {
    message: 'recheckBoundMs must be at least settleMs, or no row could ever be confirmed without a CDC slot',
    path: ['recheckBoundMs'],
  });

const cache = z.strictObject({
  /** Key templates per version; `{column}` is replaced by the key column's value. */
  keys: z.record(
    z.string().regex(/^v\d+$/, 'versions are named v1, v2, ...'),
    z.string().regex(/\{[^}]+\}/, 'a key template needs at least one {column}'),
  ),
  /** Versions written by `parity cache run`. */
  populate: z.array(z.string()).min(1),
  /** Version applications read first. */
  read: z.string(),
  /** Columns of the new representation stored in the payload (default: all). */
  projection: z.array(identifier).optional(),
  ttlSeconds: z.number().int().positive().default(86_400),
  ttlJitterPct: z.number().min(0).max(100).default(10),
  tombstoneTtlSeconds: z.number().int().positive().default(300),
  leaseMs: z.number().int().positive().default(2_000),
});

const consumer = z.strictObject({
  name: slug,
  /** Path to the consumer's Avro (or JSON Schema) reader schema, relative to the spec file. */
  readerSchema: z.string(),
});

const subject = z.strictObject({
  /** Registry subject; TopicNameStrategy gives `<topic>-value`. */
  subject: z.string().min(1),
  compatibility: compatibilityLevel,
  type: z.enum(['avro', 'json', 'protobuf']).default('avro'),
  /** Candidate schema to check before it is registered, relative to the spec file. */
  schema: z.string().optional(),
  consumers: z.array(consumer).default([]),
});

const semanticChange = z.strictObject({
  field: identifier,
  description: z.string().min(1),
  /** How consumers learn of the new meaning; the compat gate fails unless one of these is present. */
  via: z.enum(['new-field', 'new-subject', 'marker-field']),
  newField: identifier.optional(),
  newSubject: z.string().optional(),
  markerField: identifier.optional(),
});

const events = z.strictObject({
  subjects: z.array(subject).default([]),
  semanticChanges: z.array(semanticChange).default([]),
});

const ddlStep = z.strictObject({
  name: z.string().min(1),
  /** One DDL statement (checked with PostgreSQL's parser); parity sets lock_timeout/statement_timeout around it. */
  sql: z.string().min(1),
});

const ddl = z.strictObject({
  lockTimeoutMs: z.number().int().positive().default(2_000),
  statementTimeoutMs: z.number().int().positive().default(600_000),
  retries: z.number().int().min(0).default(10),
  expand: z.array(ddlStep).default([]),
  enforce: z.array(ddlStep).default([]),
  contract: z.array(ddlStep).default([]),
});

const contractGate = z.strictObject({
  requireBackfillComplete: z.boolean().default(true),
  maxConfirmedDrift: z.number().int().min(0).default(0),
  /** Zero confirmed drift must have held for this long (the latest verification inside it). */
  driftWindowMinutes: z.number().min(0).default(60),
  maxInFlight: z.number().int().min(0).default(0),
  maxCdcLagSeconds: z.number().min(0).default(5),
  requireCompat: z.boolean().default(true),
  maxStaleCacheEntries: z.number().int().min(0).default(0),
  /**
   * After cutover (issue 23): the reverse window must have been clean (old side current, no drift,
   * nothing unrepresentable pending) for this long. Not applicable while no reverse window exists; 0: not required.
   */
  reverseWindowCleanMinutes: z.number().min(0).default(60),
});

/**
 * The reverse mapping (issue 23): how the old representation is rebuilt from the new one after
 * cutover, so the old side can stay current until the contract step.
 */
const reverse = z.strictObject({
  /** Old-representation column -> SQL expression over the new representation's row that rebuilds it. */
  mapping: z.record(identifier, sqlExpression).refine((m) => Object.keys(m).length > 0, 'rebuild at least one old column'),
  /** The rows the old shape can represent, as a SQL predicate over the new row (default: every row). */
  representable: sqlExpression.optional(),
  /** What happens to rows outside `representable`: refuse the cutover, or record them as unrepresentable. */
  unrepresentable: z.enum(['refuse', 'record']).default('refuse'),
});

const lock = z
  .strictObject({
    ttlMs: z.number().int().min(100).default(15_000),
    renewEveryMs: z.number().int().min(10).default(5_000),
    /** Safety margin for clock drift: the holder stops this long before its lease could have expired. */
    driftMarginMs: z.number().int().min(0).default(1_000),
  })
  .refine((l) => l.renewEveryMs * 3 <= l.ttlMs, { message: 'renewEveryMs must be at most a third of ttlMs', path: ['renewEveryMs'] })
  // The holder stops at renewal + ttl - margin: a margin of ttl - renewEvery or more stops it before its first renewal (lock.ts).
  .refine((l) => l.driftMarginMs < l.ttlMs - l.renewEveryMs, {
    message: 'driftMarginMs must be below ttlMs - renewEveryMs, or the holder gives up before its first renewal',
    path: ['driftMarginMs'],
  });

const infra = z.strictObject({
  kafka: z.strictObject({
    brokers: z.array(z.string().regex(/^[^:]+:\d+$/, 'write host:port')).min(1),
    /** TLS and SASL for every Kafka connection (kafka-security.ts); default PLAINTEXT. */
    security: kafkaSecuritySchema.optional(),
  }),
  /** HTTPS with a CA, basic auth or a bearer token (connection-security.ts). */
  registry: registrySpecSchema,
  /** rediss:// with a CA, an ACL user and password (connection-security.ts). */
  redis: redisSpecSchema,
});

export const specSchema = z
  .strictObject({
    apiVersion: z.literal('parity/v1'),
    name: slug,
    description: z.string().optional(),
    source: tableRef,
    target,
    /** Where parity keeps its control schema (checkpoints, fences, runs); default: the target database. */
    control: z.strictObject({ database: connectionUrl.optional(), schema: identifier.default('parity') }).prefault({}),
    key: z.array(identifier).min(1),
    /** New column (or target column) -> SQL expression over the old row. */
    mapping: z.record(identifier, sqlExpression).refine((m) => Object.keys(m).length > 0, 'map at least one column'),
    /** Old column -> SQL expression over the new row, for the window after cutover (see `reverse` above). */
    reverse: reverse.optional(),
    /**
     * Functions that mappings and probes may call although parity refuses them by default (pg_*,
     * sequences, advisory locks, sleeps, dblink, large objects, ...; see sql-parse.ts), by name.
     */
    allowFunctions: z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_$]*$/, 'a function name, without parentheses or schema')).default([]),
    normalize,
    cohorts: z.array(slug).default([]),
    infra,
    cdc,
    backfill: backfill.prefault({}),
    reconcile: reconcile.prefault({}),
    cache: cache.optional(),
    events: events.prefault({}),
    ddl: ddl.prefault({}),
    gates: z.strictObject({ contract: contractGate.prefault({}) }).prefault({}),
    lock: lock.prefault({}),
    /**
     * Status server ports per service (0 = any free port). Precedence: --status-port, then
     * PARITY_STATUS_PORT, then these, then the fixed defaults (serve 9400, cdc 9401, reconcile 9402,
     * cache 9403, backfill 9404, verify 9405, reverse sync 9406).
     */
    status: z
      .strictObject({
        ports: z
          .strictObject(
            Object.fromEntries(
              ['serve', 'cdc', 'reconcile', 'cache', 'backfill', 'verify', 'reverse'].map((k) => [
                k,
                z.number().int().min(0).max(65535).optional(),
              ]),
            ) as Record<'serve' | 'cdc' | 'reconcile' | 'cache' | 'backfill' | 'verify' | 'reverse', z.ZodOptional<z.ZodNumber>>,
          )
          .prefault({}),
        /**
         * `/readyz` of the consumer-group services (`reconcile`, `cache run`) answers 503 "lagging"
         * while the member is more than this many messages behind the end of its partitions; only
         * this field sets it (default 10000 each). CDC's own limit is its slot lag (60 s).
         */
        readyMaxLagMessages: z
          .strictObject({
            reconcile: z.number().int().min(0).default(10_000),
            cache: z.number().int().min(0).default(10_000),
          })
          .prefault({}),
      })
      .prefault({}),
  })
  .superRefine((spec, ctx) => {
    for (const column of spec.key) {
      if (spec.target.kind === 'same-table' && column in spec.mapping) {
        ctx.addIssue({
          code: 'custom',
          path: ['mapping', column],
          message: `"${column}" is a key column; a same-table migration cannot remap its key`,
        });
      }
    }
    if (spec.cache) {
      for (const v of [...spec.cache.populate, spec.cache.read]) {
        if (!(v in spec.cache.keys))
          ctx.addIssue({ code: 'custom', path: ['cache', 'populate'], message: `version "${v}" has no key template in cache.keys` });
      }
      // The cache versioner's own rules (cache-versioner/settings.ts), checked here so they fail before anything runs.
      const seen = new Map<string, string>();
      for (const [version, template] of Object.entries(spec.cache.keys)) {
        for (const m of template.matchAll(/\{([^{}]*)\}/g)) {
          const column = m[1] ?? '';
          if (column === '' || !spec.key.includes(column)) {
            ctx.addIssue({
              code: 'custom',
              path: ['cache', 'keys', version],
              message:
                column === ''
                  ? 'a key template has an empty {}'
                  : `"{${column}}" is not a key column (key: ${spec.key.join(', ')}); delete events carry only the key`,
            });
          }
        }
        const other = seen.get(template);
        if (other)
          ctx.addIssue({
            code: 'custom',
            path: ['cache', 'keys', version],
            message: `same template as ${other}; give each version its own key name, e.g. order:v1:{id} and order:v2:{id}`,
          });
        seen.set(template, version);
      }
    }
    // Debezium's encoding is rendered as Avro or Connect JSON; exact-text has no Connect schema to render.
    if (spec.cdc.encoding === 'debezium' && (spec.cdc.format === 'json' || spec.cdc.format === 'protobuf'))
      ctx.addIssue({
        code: 'custom',
        path: ['cdc', 'format'],
        message: `format ${spec.cdc.format} is not offered with cdc.encoding: debezium; write format: avro or connect-json, or encoding: exact-text to keep ${spec.cdc.format}`,
      });
    if (spec.cdc.encoding === 'exact-text' && spec.cdc.format === 'connect-json')
      ctx.addIssue({
        code: 'custom',
        path: ['cdc', 'format'],
        message: 'format connect-json carries Debezium encodings only; write encoding: debezium, or format: avro, json or protobuf',
      });
    // Kafka refuses topic names over 249 characters; a change topic is <topicPrefix>.<schema>.<table>.
    const streamed: { path: (string | number)[]; schema: string; table: string }[] = [
      { path: ['source', 'table'], schema: spec.source.schema, table: spec.source.table },
    ];
    spec.cdc.tables.forEach((t, i) => {
      const [schema = '', table = ''] = t.split('.');
      streamed.push({ path: ['cdc', 'tables', i], schema, table });
      for (const part of [schema, table]) {
        if (Buffer.byteLength(part, 'utf8') > MAX_IDENTIFIER_BYTES)
          ctx.addIssue({ code: 'custom', path: ['cdc', 'tables', i], message: IDENTIFIER_TOO_LONG });
      }
    });
    for (const s of streamed) {
      const topic = changeTopic(spec.cdc.topicPrefix, s.schema, s.table);
      if (topic.length > MAX_TOPIC_LENGTH) {
        ctx.addIssue({
          code: 'custom',
          path: s.path,
          message: `its change topic "${topic.slice(0, 40)}..." is ${topic.length} characters; Kafka allows ${MAX_TOPIC_LENGTH}: shorten cdc.topicPrefix`,
        });
      }
    }
    // The reconciler's rule (reconciler/projection.ts), checked before anything connects.
    for (const column of Object.keys(spec.reconcile.keyCasts)) {
      if (!spec.key.includes(column))
        ctx.addIssue({
          code: 'custom',
          path: ['reconcile', 'keyCasts', column],
          message: `"${column}" is not a key column (key: ${spec.key.join(', ')}); name key columns only in reconcile.keyCasts`,
        });
    }
    const sqlIssue = (path: (string | number)[], p: SqlProblem): void => {
      ctx.addIssue({ code: 'custom', path, message: `${p.message}; ${p.hint}` });
    };
    const options = { allowFunctions: spec.allowFunctions };
    for (const [column, expr] of Object.entries(spec.mapping)) {
      for (const p of checkMappingExpression(expr, options)) sqlIssue(['mapping', column], p);
    }
    if (spec.reverse) checkReverse(spec.reverse, spec, options, sqlIssue, ctx);
    const probe = spec.backfill.throttle.probe?.sql;
    if (probe !== undefined) for (const p of checkReadOnlyQuery(probe, options)) sqlIssue(['backfill', 'throttle', 'probe', 'sql'], p);
    const guardSql = spec.backfill.throttle.pace.latencyGuard.sql;
    if (guardSql !== undefined)
      for (const p of checkReadOnlyQuery(guardSql, options)) sqlIssue(['backfill', 'throttle', 'pace', 'latencyGuard', 'sql'], p);
    for (const phase of ['expand', 'enforce', 'contract'] as const) {
      spec.ddl[phase].forEach((step, i) => {
        const path = ['ddl', phase, i, 'sql'];
        try {
          const statements = parseStatements(step.sql);
          if (statements.length === 0)
            ctx.addIssue({ code: 'custom', path, message: 'the step has no statement (only comments?); write one DDL statement' });
          else if (statements.length > 1)
            ctx.addIssue({
              code: 'custom',
              path,
              message: `one statement per step (found ${statements.length}); split it into several steps`,
            });
        } catch (err) {
          ctx.addIssue({
            code: 'custom',
            path,
            message: `PostgreSQL cannot parse it: ${(err as Error).message}; fix the statement (run it in psql against a scratch database to see)`,
          });
        }
      });
    }
  });

export type Spec = z.infer<typeof specSchema>;

/**
 * The reverse section's rules: every expression passes the mapping checks (one scalar expression,
 * no comments, subqueries, catalogs or denied functions); the key is shared, never rebuilt; a
 * same-table reverse rebuilds old columns only; and no expression reads an old-only column, which
 * is what reverse sync writes and what the contract step drops.
 */
function checkReverse(
  rev: z.infer<typeof reverse>,
  spec: { key: string[]; mapping: Record<string, string>; target: { kind: string } },
  options: { allowFunctions: string[] },
  sqlIssue: (path: (string | number)[], p: SqlProblem) => void,
  ctx: z.RefinementCtx,
): void {
  const oldOnly = new Set(Object.keys(rev.mapping).filter((c) => !(c in spec.mapping)));
  const expressions: { path: (string | number)[]; expr: string }[] = Object.entries(rev.mapping).map(([column, expr]) => ({
    path: ['reverse', 'mapping', column],
    expr,
  }));
  if (rev.representable !== undefined) expressions.push({ path: ['reverse', 'representable'], expr: rev.representable });
  for (const column of Object.keys(rev.mapping)) {
    if (spec.key.includes(column))
      ctx.addIssue({
        code: 'custom',
        path: ['reverse', 'mapping', column],
        message: `"${column}" is a key column; the key identifies the row on both sides and is not rebuilt: remove it`,
      });
    else if (spec.target.kind === 'same-table' && column in spec.mapping)
      ctx.addIssue({
        code: 'custom',
        path: ['reverse', 'mapping', column],
        message: `"${column}" is a new column (it is in mapping); in a same-table migration reverse rebuilds the old columns only`,
      });
  }
  for (const { path, expr } of expressions) {
    const problems = checkMappingExpression(expr, options);
    for (const p of problems) sqlIssue(path, p);
    if (problems.length > 0) continue;
    const stale = columnsRead(expr).filter((c) => oldOnly.has(c));
    if (stale.length > 0)
      ctx.addIssue({
        code: 'custom',
        path,
        message: `reads ${stale.map((c) => `"${c}"`).join(', ')}, an old-representation column that reverse sync writes and contract drops; write it over the new row's columns (the key and the columns of mapping)`,
      });
  }
}

/** Paths to fields and the hints printed with their errors. */
const HINTS: Record<string, string> = {
  apiVersion: 'write apiVersion: parity/v1',
  key: 'list the primary-key columns, e.g. key: [id]',
  'target.kind': 'one of same-table, shadow-table, other-database',
  'events.subjects.compatibility': `one of ${COMPATIBILITY_LEVELS.join(', ')}`,
  mapping: 'map each new column to a SQL expression over the old row, e.g. total_amount_minor: total_amount::bigint',
  'reverse.mapping':
    "rebuild each old column from the new row, e.g. total_amount: CASE WHEN currency = 'USD' THEN total_amount_minor::integer END",
  'reverse.unrepresentable':
    'one of refuse (the cutover is refused while such rows exist) or record (they are recorded as unrepresentable)',
  'cdc.slot': 'e.g. slot: parity_orders (lower-case letters, digits, "_")',
  'cdc.publication': 'e.g. publication: parity_orders',
  'cdc.partitions': 'a few partitions per consumer instance is plenty, e.g. partitions: 12',
  'backfill.workers': 'start with 1-4 workers; the pace controller sets the speed',
  'reconcile.jobs': 'one or two jobs per database core, e.g. jobs: 4',
  'lock.driftMarginMs': 'e.g. ttlMs: 15000, renewEveryMs: 5000, driftMarginMs: 1000',
  'lock.renewEveryMs': 'e.g. ttlMs: 15000, renewEveryMs: 5000',
  allowFunctions: 'list function names only, e.g. allowFunctions: [pg_sleep]',
};

export interface SpecProblem {
  path: string;
  message: string;
  hint?: string;
  line?: number;
}

function hintFor(path: (string | number)[]): string | undefined {
  const generic = path.filter((p) => typeof p === 'string').join('.');
  for (let n = path.length; n > 0; n--) {
    const candidate = path
      .slice(0, n)
      .filter((p) => typeof p === 'string')
      .join('.');
    if (HINTS[candidate]) return HINTS[candidate];
  }
  return HINTS[generic];
}

function formatPath(path: (string | number | symbol)[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out || '(root)';
}

/**
 * Replaces `${VAR}` and `${VAR:-default}` in every string scalar. Unset variables without a default
 * are collected as problems (with their YAML path), never replaced by an empty string. Interpolated
 * values are registered as secrets: they may be passwords and must never be printed.
 */
export function interpolate(value: unknown, env: NodeJS.ProcessEnv, path: (string | number)[], problems: SpecProblem[]): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (_m, name: string, fallback: string | undefined) => {
      const v = env[name];
      if (v !== undefined && v !== '') {
        // By name here; by position (URL userinfo, password and key fields) in registerCredentials.
        if (/PASSWORD|PASSWD|PASS|PWD|SECRET|TOKEN|KEY|CREDENTIAL|AUTH/i.test(name)) registerSecret(v);
        return v;
      }
      if (fallback !== undefined) return fallback;
      problems.push({
        path: formatPath(path),
        message: `environment variable ${name} is not set`,
        hint: `export ${name}=... before running parity, or write \${${name}:-default}`,
      });
      return '';
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, env, [...path, i], problems));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, env, [...path, k], problems)]));
  }
  return value;
}

function lineOf(doc: Document, path: (string | number)[], text: string): number | undefined {
  let node: unknown = doc.contents;
  for (const part of path) {
    if (isMap(node)) node = node.get(part, true);
    else if (isSeq(node) && typeof part === 'number') node = node.get(part, true);
    else break;
  }
  const range = (node as { range?: [number, number] } | undefined)?.range;
  if (!range) return undefined;
  return text.slice(0, range[0]).split('\n').length;
}

export interface LoadedSpec {
  spec: Spec;
  /** Absolute path of the spec file (schemas named in it are relative to its folder). */
  file: string;
  /**
   * The spec's identity (specHash): sha256 of the validated spec, so a comment or a reformatted file
   * keeps it while a changed value, or a `${VAR}` resolving elsewhere, changes it. A verification run
   * is joined only under the same hash and abandoned otherwise; reports and the contract gate name it.
   */
  configHash: string;
}

/** Kafka's limit on topic names. */
const MAX_TOPIC_LENGTH = 249;

/** Aliases (`*name`) a spec may use; a spec needs few, an alias bomb needs thousands. */
const MAX_YAML_ALIASES = 100;

/**
 * Offline validation (`parity spec validate --offline`, a CI lint without the secrets): leaves every
 * `${VAR}` unresolved. Each is replaced by a placeholder (`${VAR:-default}` by its default), so a URL
 * with a variable password is still checked as a URL. A field that is one variable and nothing else
 * (a whole URL, a number) has no format to check: its path is recorded and its problems skipped.
 */
function deferVariables(value: unknown, path: (string | number)[], unresolved: Set<string>): unknown {
  if (typeof value === 'string') {
    if (/^\$\{[A-Za-z_][A-Za-z0-9_]*\}$/.test(value)) unresolved.add(formatPath(path));
    return value.replace(
      /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g,
      (_m, name: string, fallback: string | undefined) => fallback ?? `unresolved-${name}`,
    );
  }
  if (Array.isArray(value)) return value.map((v, i) => deferVariables(v, [...path, i], unresolved));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, deferVariables(v, [...path, k], unresolved)]));
  }
  return value;
}

/**
 * Validates spec text. Throws PARITY_SPEC_INVALID listing every problem. With `offline`, no `${VAR}`
 * is resolved (see deferVariables): use the result as a verdict only, never to run anything.
 */
export function parseSpec(
  text: string,
  file = '<spec>',
  env: NodeJS.ProcessEnv = process.env,
  options: { offline?: boolean } = {},
): LoadedSpec {
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((e) => ({
      path: '(yaml)',
      message: e.message.split('\n')[0] ?? e.message,
      hint: 'fix the YAML syntax',
    }));
    throw specError(file, problems);
  }
  let raw: unknown;
  try {
    // An alias-heavy document (a "billion laughs" bomb) expands exponentially: the yaml library stops
    // at maxAliasCount and throws, which is bad input, not an internal error.
    raw = doc.toJS({ maxAliasCount: MAX_YAML_ALIASES }) as unknown;
  } catch (err) {
    throw specError(file, [
      {
        path: '(yaml)',
        message: `the YAML cannot be expanded: ${(err as Error).message}`,
        hint: `use at most ${MAX_YAML_ALIASES} aliases (*name) and no alias that expands into many others; write the values out instead`,
      },
    ]);
  }
  const problems: SpecProblem[] = [];
  const unresolved = new Set<string>();
  const interpolated = options.offline ? deferVariables(raw, [], unresolved) : interpolate(raw, env, [], problems);
  registerCredentials(interpolated);
  // A literal password is refused before interpolation hides where it came from.
  for (const p of literalKafkaSecrets(raw))
    problems.push({ ...p, line: lineOf(doc, ['infra', 'kafka', 'security', 'sasl', 'password'], text) });
  for (const p of literalConnectionSecrets(raw)) problems.push({ ...p, line: lineOf(doc, p.path.split('.'), text) });
  const result = specSchema.safeParse(interpolated);
  if (!result.success) {
    // A field whose ${VAR} is unset already has its problem; its knock-on format error adds nothing.
    const envPaths = new Set([...problems.map((p) => p.path), ...unresolved]);
    for (const issue of result.error.issues) {
      const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
      if (envPaths.has(formatPath(path))) continue;
      let message = issue.message;
      if (issue.code === 'unrecognized_keys') {
        message = `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')} (typo?)`;
        for (const key of issue.keys) {
          problems.push({
            path: formatPath([...path, key]),
            message: `unknown field "${key}" (typo?)`,
            hint: 'remove it or fix its spelling; `parity spec json-schema` lists every field',
            line: lineOf(doc, [...path, key], text),
          });
        }
        continue;
      }
      problems.push({ path: formatPath(path), message, hint: hintFor(path), line: lineOf(doc, path, text) });
    }
  }
  if (problems.length > 0) throw specError(file, problems);
  // Offline, a field left unresolved may have failed its format: the placeholders stand in for it.
  const spec = (result.success ? result.data : interpolated) as Spec;
  return { spec, file, configHash: specHash(spec) };
}

/** Field names whose values are credentials: hashed as REDACTED, so no secret feeds the hash. */
const CREDENTIAL_FIELD = /password|secret|token/i;

/**
 * sha256 of the validated spec (defaults applied, keys sorted) with credentials left out: URL passwords
 * and credential query parameters (redactUrl) and credential fields. Rotating a password keeps the
 * hash; pointing a database URL at another host or database changes it.
 */
export function specHash(spec: Spec): string {
  const canonical = (value: unknown, key: string): unknown => {
    if (typeof value === 'string') return CREDENTIAL_FIELD.test(key) ? REDACTED : redactUrl(value);
    if (Array.isArray(value)) return value.map((v) => canonical(v, key));
    if (value && typeof value === 'object') {
      return Object.fromEntries(
        Object.keys(value)
          .sort()
          .map((k) => [k, canonical((value as Record<string, unknown>)[k], k)]),
      );
    }
    return value;
  };
  return createHash('sha256')
    .update(JSON.stringify(canonical(spec, '')))
    .digest('hex');
}

function specError(file: string, problems: SpecProblem[]): ParityError {
  const lines = problems.map(
    (p) => `  ${p.path}${p.line ? ` (line ${p.line})` : ''}: ${p.message}${p.hint ? `\n      hint: ${p.hint}` : ''}`,
  );
  return new ParityError('PARITY_SPEC_INVALID', `${file} is not a valid migration spec:\n${lines.join('\n')}`, {
    details: { problems },
    hint: 'fix the fields above; exit code 2 means the spec was rejected before anything ran',
  });
}

export function loadSpec(file: string, env: NodeJS.ProcessEnv = process.env, options: { offline?: boolean } = {}): LoadedSpec {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ParityError('PARITY_BAD_INPUT', `cannot read spec file ${file}: ${(err as Error).message}`, {
      hint: 'pass the path of a YAML migration spec with --spec',
    });
  }
  const loaded = parseSpec(text, file, env, options);
  return { ...loaded, file: new URL(file, `file://${process.cwd()}/`).pathname };
}

/** The connection URL of the database holding the new representation. */
export function targetDatabase(spec: Spec): string {
  return spec.target.kind === 'other-database' ? spec.target.database : spec.source.database;
}

/** The new representation's table (same as the source for same-table migrations). */
export function targetTable(spec: Spec): { schema: string; table: string } {
  return spec.target.kind === 'same-table'
    ? { schema: spec.source.schema, table: spec.source.table }
    : { schema: spec.target.schema, table: spec.target.table };
}

/** The control database: explicit, else the target database. */
export function controlDatabase(spec: Spec): string {
  return spec.control.database ?? targetDatabase(spec);
}

export function specJsonSchema(): unknown {
  return z.toJSONSchema(specSchema, { io: 'input', unrepresentable: 'any' });
}
