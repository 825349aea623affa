/**
 * Every Redis key name the cache versioner and the cache reader use, built in one place.
 *
 * Entry keys come from the spec's templates: `order:v2:{id}` becomes `order:v2:42` (the braces are
 * the placeholder, not a Cluster hash tag). Control keys share the hash tag `{<migration>}` so that
 * multi-key scripts (config + audit) and PFCOUNT over the written-key buckets run in one slot.
 */
import { ParityError } from '../core/errors.js';

/** A parsed key template: literal text and `{column}` placeholders, in order. */
export interface KeyTemplate {
  version: string;
  template: string;
  parts: Array<{ text: string } | { column: string }>;
  columns: string[];
}

/** Parses `order:v1:{id}`; a template needs at least one `{column}` and no empty `{}`. */
export function parseTemplate(version: string, template: string): KeyTemplate {
  const parts: KeyTemplate['parts'] = [];
  const columns: string[] = [];
  const re = /\{([^{}]*)\}/g;
  let last = 0;
  for (let m = re.exec(template); m; m = re.exec(template)) {
    if (m.index > last) parts.push({ text: template.slice(last, m.index) });
    const column = m[1] ?? '';
    if (column === '') {
      throw new ParityError('PARITY_SPEC_INVALID', `cache.keys.${version}: "${template}" has an empty {}`, {
        hint: 'write the key column inside the braces, e.g. order:v1:{id}',
      });
    }
    parts.push({ column });
    columns.push(column);
    last = m.index + m[0].length;
  }
  if (last < template.length) parts.push({ text: template.slice(last) });
  if (columns.length === 0) {
    throw new ParityError('PARITY_SPEC_INVALID', `cache.keys.${version}: "${template}" has no {column}`, {
      hint: 'write the key column inside braces, e.g. order:v1:{id}',
    });
  }
  return { version, template, parts, columns };
}

/** Text of one key value inside a key name. Numbers and exact decimal strings render the same way. */
function keyText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}

/**
 * The entry key for one row: each `{column}` replaced by the row's key value. A missing or null key
 * value is an error, never the text "undefined".
 */
export function renderKey(template: KeyTemplate, values: Record<string, unknown>): string {
  let out = '';
  for (const part of template.parts) {
    if ('text' in part) {
      out += part.text;
      continue;
    }
    const value = values[part.column];
    if (value === undefined || value === null) {
      throw new ParityError('PARITY_BAD_INPUT', `cache key ${template.template}: the row has no value for key column "${part.column}"`, {
        hint: 'key templates may only use primary-key columns, which every change event carries',
      });
    }
    out += keyText(value);
  }
  return out;
}

/** A SCAN MATCH glob for every entry of a template: literal parts escaped, placeholders as `*`. */
export function templatePattern(template: KeyTemplate): string {
  return template.parts.map((p) => ('text' in p ? p.text.replace(/[*?[\]\\]/g, (c) => `\\${c}`) : '*')).join('');
}

/** Control key names for one migration. */
export interface CacheKeys {
  /** Hash: read version, populated versions, generation, since:/dropped: times, truncate barrier. */
  config: string;
  /** Stream: every init and cutover with who, when, from and to. */
  audit: string;
  /** HyperLogLog of the entry keys of `version` written during time bucket `bucket`. */
  written(version: string, bucket: number): string;
  /** The fill lease of one entry key. */
  lease(entryKey: string): string;
}

export function cacheKeys(migration: string): CacheKeys {
  const base = `parity:cache:{${migration}}`;
  return {
    config: `${base}:config`,
    audit: `${base}:audit`,
    written: (version, bucket) => `${base}:written:${version}:${bucket}`,
    lease: (entryKey) => `parity:lease:${entryKey}`,
  };
}
