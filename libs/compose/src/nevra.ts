// RPM name-epoch:version-release.arch strings as productmd's rpms.json keys them: the epoch is
// always present (0 when the package has none), so two builds never differ only in spelling.

export interface NevraParts {
  name: string;
  /** Missing, null or '' means 0. */
  epoch?: string | number | null;
  version: string;
  release: string;
  arch: string;
}

function field(value: string, what: string, forbidden: RegExp): string {
  if (!value || /\s/.test(value) || forbidden.test(value)) throw new Error(`nevra: invalid ${what} ${JSON.stringify(value)}`);
  return value;
}

function epochText(epoch: NevraParts['epoch']): string {
  if (epoch === undefined || epoch === null || epoch === '') return '0';
  const text = String(epoch);
  if (!/^\d+$/.test(text)) throw new Error(`nevra: invalid epoch ${JSON.stringify(epoch)}`);
  return String(Number(text)); // '007' and 7 are the same epoch
}

/** `bash-0:5.1.8-9.el9.x86_64`. */
export function nevra(p: NevraParts): string {
  const name = field(p.name, 'name', /^$/);
  // '-' separates name, version and release; ':' the epoch: neither may appear inside version/release.
  const version = field(p.version, 'version', /[-:]/);
  const release = field(p.release, 'release', /[-:]/);
  const arch = field(p.arch, 'arch', /[-:.]/);
  return `${name}-${epochText(p.epoch)}:${version}-${release}.${arch}`;
}

/**
 * Parses `n-e:v-r.a`, `n-v-r.a` or an RPM file name (`n-v-r.a.rpm`, path allowed). The epoch
 * is undefined when the text has none (a file name never does).
 */
export function parseNevra(text: string): Required<Omit<NevraParts, 'epoch'>> & { epoch?: string } {
  const base = text.slice(text.lastIndexOf('/') + 1).replace(/\.rpm$/, '');
  const m = /^(.+)-(?:(\d+):)?([^-:]+)-([^-:]+)\.([^-.:]+)$/.exec(base);
  if (!m) throw new Error(`nevra: cannot parse ${JSON.stringify(text)}`);
  const [, name, epoch, version, release, arch] = m;
  return epoch === undefined ? { name, version, release, arch } : { name, epoch: String(Number(epoch)), version, release, arch };
}

export interface PackageDiff {
  added: string[];
  removed: string[];
  /** Same name.arch, other versions: `from` are NEVRAs gone, `to` NEVRAs new. */
  updated: { name: string; arch: string; from: string[]; to: string[] }[];
}

const nevraOf = (p: NevraParts) => nevra({ name: p.name, epoch: p.epoch, version: p.version, release: p.release, arch: p.arch });

/**
 * NEVRA-level difference. A name.arch present before and after whose versions changed is an
 * update (also when old versions are kept, as rocky-8 staging does: then `from` is empty).
 */
export function diffPackages(before: NevraParts[], after: NevraParts[]): PackageDiff {
  const group = (ps: NevraParts[]) => {
    const m = new Map<string, Set<string>>();
    for (const p of ps) {
      const k = `${p.name}.${p.arch}`;
      if (!m.has(k)) m.set(k, new Set());
      m.get(k)!.add(nevraOf(p));
    }
    return m;
  };
  const b = group(before);
  const a = group(after);
  const diff: PackageDiff = { added: [], removed: [], updated: [] };
  for (const [k, to] of a) {
    const from = b.get(k);
    if (!from) diff.added.push(...to);
    else {
      const gone = [...from].filter((x) => !to.has(x)).sort();
      const fresh = [...to].filter((x) => !from.has(x)).sort();
      if (gone.length || fresh.length) {
        const dot = k.lastIndexOf('.');
        diff.updated.push({ name: k.slice(0, dot), arch: k.slice(dot + 1), from: gone, to: fresh });
      }
    }
  }
  for (const [k, from] of b) if (!a.has(k)) diff.removed.push(...from);
  diff.added.sort();
  diff.removed.sort();
  diff.updated.sort((x, y) => (x.name === y.name ? x.arch.localeCompare(y.arch) : x.name < y.name ? -1 : 1));
  return diff;
}
