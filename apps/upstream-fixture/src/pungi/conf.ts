// The part of kobo's PyConfigParser syntax (kobo/conf.py) pungi configs use: `name = value` with
// strings, numbers, True/False/None, lists, tuples, dicts and earlier names as values, and
// `from <file without .conf> import *|names` to include a file of the same directory. String
// `%` formatting and `global` are refused rather than half supported.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export type ConfValue = string | number | boolean | null | ConfValue[] | ConfTuple | { [k: string]: ConfValue };
/** A Python tuple: kept apart from lists, as pungi's schema tells them apart. */
export class ConfTuple extends Array<ConfValue> {}

interface Token {
  kind: 'name' | 'string' | 'number' | 'op' | 'newline' | 'end';
  value: string;
  line: number;
}

function tokenize(text: string, file: string): Token[] {
  const out: Token[] = [];
  let line = 1;
  let depth = 0;
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '\n') {
      if (depth === 0) out.push({ kind: 'newline', value: '\n', line });
      line++;
      i++;
    } else if (c === ' ' || c === '\t' || c === '\r') i++;
    else if (c === '\\' && text[i + 1] === '\n') {
      i += 2;
      line++;
    } else if (c === '#') while (i < text.length && text[i] !== '\n') i++;
    else if (c === '"' || c === "'") {
      if (text.startsWith(c.repeat(3), i)) throw new Error(`${file}:${line}: triple-quoted strings are not supported`);
      const end = text.indexOf(c, i + 1);
      const nl = text.indexOf('\n', i + 1);
      if (end < 0 || (nl >= 0 && nl < end)) throw new Error(`${file}:${line}: unterminated string`);
      const body = text.slice(i + 1, end);
      if (body.includes('\\')) throw new Error(`${file}:${line}: backslash escapes in strings are not supported`);
      out.push({ kind: 'string', value: body, line });
      i = end + 1;
    } else if (/[0-9]/.test(c)) {
      const m = /^[0-9]+(\.[0-9]+)?/.exec(text.slice(i))!;
      out.push({ kind: 'number', value: m[0], line });
      i += m[0].length;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i))!;
      out.push({ kind: 'name', value: m[0], line });
      i += m[0].length;
    } else if ('=[](){},:-*%.'.includes(c)) {
      if ('[({'.includes(c)) depth++;
      if ('])}'.includes(c)) depth = Math.max(0, depth - 1);
      out.push({ kind: 'op', value: c, line });
      i++;
    } else throw new Error(`${file}:${line}: unexpected character ${JSON.stringify(c)}`);
  }
  out.push({ kind: 'newline', value: '\n', line }, { kind: 'end', value: '', line });
  return out;
}

/** Reads a kobo config file (and the files it imports) into a dict. */
export function loadConf(file: string, seen: string[] = []): Record<string, ConfValue> {
  if (seen.includes(file)) throw new Error(`${file}: imported in a cycle (${[...seen, file].join(' -> ')})`);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`${file}: cannot read: ${(e as Error).message}`);
  }
  return parseConf(text, file, (name) => loadConf(join(dirname(file), `${name}.conf`), [...seen, file]));
}

export function parseConf(text: string, file: string, load: (name: string) => Record<string, ConfValue>): Record<string, ConfValue> {
  const toks = tokenize(text, file);
  let p = 0;
  const conf: Record<string, ConfValue> = {};
  const peek = () => toks[p];
  const next = () => toks[p++];
  const fail = (t: Token, msg: string): never => {
    throw new Error(`${file}:${t.line}: ${msg}`);
  };
  const expectOp = (v: string) => {
    const t = next();
    if (t.kind !== 'op' || t.value !== v) fail(t, `expected '${v}', got ${JSON.stringify(t.value)}`);
  };
  const skipNewlines = () => {
    while (peek().kind === 'newline') p++;
  };

  const value = (): ConfValue => {
    const t = next();
    if (t.kind === 'string') {
      if (peek().kind === 'op' && peek().value === '%') fail(peek(), "string '%' formatting is not supported");
      return t.value;
    }
    if (t.kind === 'number') return Number(t.value);
    if (t.kind === 'op' && t.value === '-') {
      const n = next();
      if (n.kind !== 'number') fail(n, 'expected a number after -');
      return -Number(n.value);
    }
    if (t.kind === 'name') {
      if (t.value === 'True') return true;
      if (t.value === 'False') return false;
      if (t.value === 'None') return null;
      if (!(t.value in conf)) fail(t, `undefined name ${t.value}`);
      return conf[t.value];
    }
    if (t.kind === 'op' && (t.value === '[' || t.value === '(')) {
      const close = t.value === '[' ? ']' : ')';
      const items: ConfValue[] = t.value === '[' ? [] : new ConfTuple();
      for (;;) {
        while (peek().kind === 'op' && peek().value === ',') p++;
        if (peek().kind === 'op' && peek().value === close) {
          p++;
          return items;
        }
        items.push(value());
        const sep = peek();
        if (!(sep.kind === 'op' && (sep.value === ',' || sep.value === close))) fail(sep, `expected ',' or '${close}'`);
      }
    }
    if (t.kind === 'op' && t.value === '{') {
      const d: Record<string, ConfValue> = {};
      for (;;) {
        while (peek().kind === 'op' && peek().value === ',') p++;
        if (peek().kind === 'op' && peek().value === '}') {
          p++;
          return d;
        }
        const kt = peek();
        const k = value();
        if (typeof k !== 'string' && typeof k !== 'number') fail(kt, 'dict keys must be strings or numbers');
        if (String(k) in d) fail(kt, `duplicate dict key ${JSON.stringify(k)}`);
        expectOp(':');
        d[String(k)] = value();
        const sep = peek();
        if (!(sep.kind === 'op' && (sep.value === ',' || sep.value === '}'))) fail(sep, "expected ',' or '}'");
      }
    }
    return fail(t, `expected a value, got ${JSON.stringify(t.value)}`);
  };

  for (;;) {
    skipNewlines();
    const t = next();
    if (t.kind === 'end') return conf;
    if (t.kind !== 'name') fail(t, `expected a name, got ${JSON.stringify(t.value)}`);
    if (t.value === 'global') fail(t, "'global' is not supported");
    if (t.value === 'from') {
      let name = '';
      while (!(peek().kind === 'name' && peek().value === 'import')) {
        const n = next();
        if (n.kind === 'newline' || n.kind === 'end') fail(n, "expected 'import'");
        name += n.value;
      }
      p++;
      const imported = load(name);
      const names: string[] = [];
      while (peek().kind !== 'newline') {
        const n = next();
        if (n.kind === 'op' && n.value === ',') continue;
        if (!(n.kind === 'name' || (n.kind === 'op' && n.value === '*'))) fail(n, 'expected names or * to import');
        names.push(n.value);
      }
      if (names.includes('*')) Object.assign(conf, imported);
      else
        for (const n of names) {
          if (!(n in imported)) fail(t, `cannot import ${n} from ${name}.conf`);
          conf[n] = imported[n];
        }
      continue;
    }
    expectOp('=');
    conf[t.value] = value();
    const end = next();
    if (end.kind !== 'newline') fail(end, `expected the end of the line after ${t.value} = ...`);
  }
}
