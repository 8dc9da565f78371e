// A full listing of a tree, to show that something (a dry run, a refused publish) changed nothing.
import { existsSync, lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Every entry under `dir` with type, size, mtime (ns precision), inode and link target: equal
 * listings mean nothing was added, removed, replaced, rewritten or even touched. (Link counts are
 * left out: another tree hardlinking a file does not change it.)
 */
export function listing(dir: string): string[] {
  if (!existsSync(dir)) return ['<absent>'];
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(rel ? join(dir, rel) : dir).sort()) {
      const p = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(dir, p), { bigint: true });
      if (st.isSymbolicLink()) out.push(`l ${p} -> ${readlinkSync(join(dir, p))}`);
      else if (st.isDirectory()) {
        out.push(`d ${p} ${st.mtimeNs}`);
        walk(p);
      } else out.push(`f ${p} ${st.size} ${st.mtimeNs} ${st.ino}`);
    }
  };
  walk('');
  return out;
}

