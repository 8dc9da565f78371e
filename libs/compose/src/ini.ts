// The INI dialect productmd reads and writes: Python's configparser with case-preserving keys,
// `key = value` lines, sections and keys sorted (productmd's SortedConfigParser), and a blank
// line after every section including the last, exactly as configparser.write() emits it.
import { byteOrder } from './order';

export type IniSections = Map<string, Map<string, string>>;

/** Renders sections sorted by name, keys sorted within each; every section ends with a blank line. */
export function renderIni(sections: IniSections): string {
  let out = '';
  for (const name of [...sections.keys()].sort(byteOrder)) {
    if (!name || /[\]\r\n]/.test(name) || name !== name.trim()) throw new Error(`invalid INI section name ${JSON.stringify(name)}`);
    out += `[${name}]\n`;
    const keys = sections.get(name)!;
    for (const key of [...keys.keys()].sort(byteOrder)) {
      const value = keys.get(key)!;
      // A delimiter inside a key, or a newline anywhere, would read back as something else.
      if (!key || /[=:\r\n]/.test(key) || key !== key.trim()) throw new Error(`invalid INI key ${JSON.stringify(key)} in [${name}]`);
      if (/[\r\n]/.test(value) || value !== value.trim()) throw new Error(`invalid INI value ${JSON.stringify(value)} for ${key} in [${name}]`);
      out += `${key} = ${value}\n`; // configparser writes `key = ` (trailing space) for an empty value
    }
    out += '\n';
  }
  return out;
}

/**
 * Parses configparser-style INI: full-line `#`/`;` comments, `key = value` or `key: value`
 * (split at the first delimiter), indented continuation lines. Duplicate sections or keys and
 * lines outside a section are errors, as in configparser's strict mode; errors name the line.
 */
export function parseIni(text: string, what = 'INI'): IniSections {
  const sections: IniSections = new Map();
  let current: Map<string, string> | undefined;
  let currentName = '';
  let lastKey: string | undefined;
  const lines = text.split('\n');
  lines.forEach((raw, i) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    const fail = (msg: string): never => {
      throw new Error(`${what} line ${i + 1}: ${msg}: ${JSON.stringify(line)}`);
    };
    const stripped = line.trim();
    if (!stripped) {
      lastKey = undefined;
      return;
    }
    if (stripped.startsWith('#') || stripped.startsWith(';')) return;
    if (/^\s/.test(line) && current && lastKey !== undefined) {
      current.set(lastKey, `${current.get(lastKey)}\n${stripped}`);
      return;
    }
    const header = /^\[(.+)\]$/.exec(stripped);
    if (header) {
      currentName = header[1];
      if (sections.has(currentName)) fail(`duplicate section [${currentName}]`);
      current = new Map();
      sections.set(currentName, current);
      lastKey = undefined;
      return;
    }
    if (!current) fail('key outside any section');
    const opt = /^(.*?)\s*[=:]\s*(.*)$/.exec(stripped);
    if (!opt || !opt[1]) fail('expected `key = value` or `[section]`');
    const [, key, value] = opt!;
    if (current!.has(key)) fail(`duplicate key ${key} in [${currentName}]`);
    current!.set(key, value);
    lastKey = key;
  });
  return sections;
}
