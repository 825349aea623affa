/**
 * The JS twin of PostgreSQL's `x::jsonb::text`, the canonical form used to compare json values:
 * object keys de-duplicated (the last one wins) and ordered by byte length then bytes, one space
 * after ":" and ",", numbers printed as `numeric_in`/`numeric_out` would, strings re-escaped the
 * way `escape_json` does. Numbers stay text throughout so no precision is lost.
 */
import { numericText } from './decimal.js';

type JsonValue =
  | { t: 'null' }
  | { t: 'bool'; v: boolean }
  | { t: 'num'; v: string }
  | { t: 'str'; v: string }
  | { t: 'arr'; v: JsonValue[] }
  | { t: 'obj'; v: Array<[string, JsonValue]> };

class JsonSyntaxError extends Error {}

function parse(text: string): JsonValue {
  let i = 0;
  const ws = (): void => {
    while (i < text.length && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++;
  };
  const fail = (what: string): never => {
    throw new JsonSyntaxError(`${what} at offset ${i}`);
  };
  const str = (): string => {
    if (text[i] !== '"') fail('expected a string');
    i++;
    let out = '';
    for (;;) {
      if (i >= text.length) fail('unterminated string');
      const c = text[i++]!;
      if (c === '"') return out;
      if (c !== '\\') {
        out += c;
        continue;
      }
      const e = text[i++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out += e;
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          const hex = text.slice(i, i + 4);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail('bad \\u escape');
          out += String.fromCharCode(Number.parseInt(hex, 16));
          i += 4;
          break;
        }
        default:
          fail('bad escape');
      }
    }
  };
  const value = (): JsonValue => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const members: Array<[string, JsonValue]> = [];
      ws();
      if (text[i] === '}') {
        i++;
        return { t: 'obj', v: members };
      }
      for (;;) {
        ws();
        const k = str();
        ws();
        if (text[i++] !== ':') fail('expected ":"');
        members.push([k, value()]);
        ws();
        const sep = text[i++];
        if (sep === '}') return { t: 'obj', v: members };
        if (sep !== ',') fail('expected "," or "}"');
      }
    }
    if (c === '[') {
      i++;
      const items: JsonValue[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return { t: 'arr', v: items };
      }
      for (;;) {
        items.push(value());
        ws();
        const sep = text[i++];
        if (sep === ']') return { t: 'arr', v: items };
        if (sep !== ',') fail('expected "," or "]"');
      }
    }
    if (c === '"') return { t: 'str', v: str() };
    for (const [word, v] of [
      ['true', { t: 'bool', v: true }],
      ['false', { t: 'bool', v: false }],
      ['null', { t: 'null' }],
    ] as const) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return v;
      }
    }
    const m = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(text.slice(i));
    if (!m) return fail('unexpected character');
    i += m[0].length;
    return { t: 'num', v: m[0] };
  };
  const v = value();
  ws();
  if (i !== text.length) fail('trailing characters');
  return v;
}

/** PostgreSQL's escape_json: quotes, backslash, the short escapes, other controls as \u00xx. */
function escapeString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const code = ch.codePointAt(0)!;
    switch (ch) {
      case '"':
        out += '\\"';
        break;
      case '\\':
        out += '\\\\';
        break;
      case '\b':
        out += '\\b';
        break;
      case '\f':
        out += '\\f';
        break;
      case '\n':
        out += '\\n';
        break;
      case '\r':
        out += '\\r';
        break;
      case '\t':
        out += '\\t';
        break;
      default:
        out += code < 0x20 ? `\\u${code.toString(16).padStart(4, '0')}` : ch;
    }
  }
  return `${out}"`;
}

/** jsonb orders keys by byte length first, then by bytes (lengthCompareJsonbStringValue). */
function compareKeys(a: string, b: string): number {
  const ba = Buffer.from(a, 'utf8');
  const bb = Buffer.from(b, 'utf8');
  if (ba.length !== bb.length) return ba.length - bb.length;
  return Buffer.compare(ba, bb);
}

function print(v: JsonValue): string {
  switch (v.t) {
    case 'null':
      return 'null';
    case 'bool':
      return v.v ? 'true' : 'false';
    case 'num':
      return numericText(v.v) ?? v.v;
    case 'str':
      return escapeString(v.v);
    case 'arr':
      return `[${v.v.map(print).join(', ')}]`;
    case 'obj': {
      const last = new Map<string, JsonValue>();
      for (const [k, val] of v.v) last.set(k, val);
      const keys = [...last.keys()].sort(compareKeys);
      return `{${keys.map((k) => `${escapeString(k)}: ${print(last.get(k)!)}`).join(', ')}}`;
    }
  }
}

/**
 * Canonical jsonb text of a JSON document given as text, or of an already-parsed JS value.
 * Throws a SyntaxError-like error for text that is not JSON.
 */
export function jsonbText(value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  try {
    return print(parse(text));
  } catch (err) {
    if (err instanceof JsonSyntaxError) throw new SyntaxError(`not JSON: ${err.message}`);
    throw err;
  }
}
