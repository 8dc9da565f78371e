// A full listing of a tree (path, type, size, mtime, link target), to show that something (a dry
// run) changed nothing under it.
import { lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';

export function listing(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    let names: string[];
    try {
      names = readdirSync(rel ? join(root, rel) : root).sort();
    } catch {
      return;
    }
    for (const n of names) {
      const p = rel ? `${rel}/${n}` : n;
      const st = lstatSync(join(root, p));
      if (st.isSymbolicLink()) out.push(`${p} -> ${readlinkSync(join(root, p))}`);
      else if (st.isDirectory()) {
        out.push(`${p}/ ${st.mtimeMs}`);
        walk(p);
      } else out.push(`${p} ${st.size} ${st.mtimeMs}`);
    }
  };
  walk('');
  return out;
}
