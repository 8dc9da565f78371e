// What a pungi compose is made from, as far as this side can tell without running pungi: the
// config files it reads (the compose's config, the files it imports with `from <name> import`,
// the files of its checkout it names: variants.xml, comps, JSON) and the koji tags its package
// set comes from. A compose task's Nx hash is built from these (see libs/stages pungi-inputs.ts),
// so an unchanged koji and config replay the compose instead of making a new one.
//
// The config is read as text, not evaluated: pungi's configs are kobo config files (Python-like),
// and all that is needed here is which files and which tags. A tag given by anything but string
// literals (a name defined elsewhere) is an error: the caller then never caches the compose.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, relative } from 'node:path';
import { run } from '@rocky/exec';

export interface PungiConfigInputs {
  /** Every file read, absolute, in the order found (the config first). */
  files: string[];
  /** `pkgset_koji_tag`: the tags pungi takes the package set from. */
  kojiTags: string[];
  /** `koji_profile`: the koji CLI profile pungi uses (`koji -p <profile>`). */
  kojiProfile?: string;
}

/** The value of `name = …` up to its end (brackets balanced), or undefined when the line is not such an assignment. */
function assignment(lines: string[], i: number, name: string): { value: string; end: number } | undefined {
  const m = new RegExp(`^${name}\\s*=\\s*(.*)$`).exec(lines[i]);
  if (!m) return undefined;
  let value = m[1];
  let depth = 0;
  let end = i;
  const count = (s: string) => {
    for (const c of s.replace(/'[^']*'|"[^"]*"/g, '')) depth += '[({'.includes(c) ? 1 : '])}'.includes(c) ? -1 : 0;
  };
  count(value);
  while (depth > 0 && end + 1 < lines.length) {
    end++;
    value += `\n${lines[end]}`;
    count(lines[end]);
  }
  return { value, end };
}

/** The string literals of a value; an error when it holds anything else but brackets, commas and comments. */
function literals(value: string, where: string): string[] {
  const strings = [...value.matchAll(/'([^']*)'|"([^"]*)"/g)].map((m) => m[1] ?? m[2]);
  const rest = value.replace(/'[^']*'|"[^"]*"/g, '').replace(/#.*$/gm, '').replace(/[\s[\](),]/g, '');
  if (rest) throw new Error(`${where}: not a string or a list of strings (${value.trim().slice(0, 80)}): cannot tell which koji tags the compose reads`);
  return strings;
}

/** Reads `config` (a pungi config in the checkout `checkout`) for the files and koji tags it uses. */
export function pungiConfigInputs(config: string, checkout = dirname(config)): PungiConfigInputs {
  const out: PungiConfigInputs = { files: [], kojiTags: [] };
  const read = (file: string) => {
    if (out.files.includes(file)) return;
    if (!existsSync(file)) throw new Error(`${file}: no such pungi config file`);
    out.files.push(file);
    const lines = readFileSync(file, 'utf8').split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i];
      // kobo's `from <file without .conf> import …`: a file of the same directory.
      const imp = /^from\s+([\w.-]+)\s+import\b/.exec(line);
      if (imp) read(join(dirname(file), `${imp[1]}.conf`));
      for (const [name, set] of [
        ['pkgset_koji_tag', (v: string[]) => (out.kojiTags = v)],
        ['koji_profile', (v: string[]) => (out.kojiProfile = v[0])],
      ] as const) {
        const a = assignment(lines, i, name);
        if (a) set(literals(a.value, `${file}:${i + 1}: ${name}`));
      }
      // Files of the checkout the config names (variants_file, comps_file, JSON lists…).
      for (const m of line.replace(/#.*$/, '').matchAll(/'([^'\s]+)'|"([^"\s]+)"/g)) {
        const name = m[1] ?? m[2];
        if (isAbsolute(name) || name.includes('..')) continue;
        const p = join(dirname(file), name);
        if (!relative(checkout, p).startsWith('..') && statSync(p, { throwIfNoEntry: false })?.isFile() && !out.files.includes(p)) out.files.push(p);
      }
    }
  };
  read(config);
  return out;
}

/**
 * What koji holds for the tags now: `koji [-p <profile>] list-tagged --latest --inherit --quiet
 * <tag>` (the latest build of every package, inherited tags included: what pungi's package set
 * takes), one run per tag, the output as it is. `command` is how koji is started (default `koji`).
 */
export async function kojiTagListing(tags: string[], o: { profile?: string; command?: string[]; env?: Record<string, string> } = {}): Promise<string> {
  if (!tags.length) throw new Error('no koji tag (pkgset_koji_tag) in the config');
  const parts: string[] = [];
  for (const tag of tags) {
    const argv = [...(o.command ?? ['koji']), ...(o.profile ? ['-p', o.profile] : []), 'list-tagged', '--latest', '--inherit', '--quiet', tag];
    const r = await run(argv, { env: { ...process.env, ...o.env }, timeoutMs: 300_000 });
    parts.push(`${tag}\n${r.stdout}`);
  }
  return parts.join('\n');
}
