// The digest of a published tree: what `prod` approval names. sha256 over every entry sorted by
// path (byte order): relative path, type, and for files size and mtime (whole seconds, what rsync
// preserves everywhere), for symlinks the target. Directories contribute path and type only:
// their size depends on the filesystem and their time on rsync's temp dirs, not on content.
// Symlink times are left out too: a link is its target.
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';

export interface TreeDigest {
  digest: string;
  entries: number;
  files: number;
  bytes: number;
}

/** Sort key in UTF-8 byte order: a latin1 string of the UTF-8 bytes compares bytewise. */
const byteKey = (p: string) => (/[^\x00-\x7f]/.test(p) ? Buffer.from(p).toString('latin1') : p);

export function treeDigest(dir: string): TreeDigest {
  const h = createHash('sha256');
  let entries = 0;
  let files = 0;
  let bytes = 0;
  // Depth-first in sorted order yields globally sorted paths only if `/` sorts before every name
  // byte, which it does not ('-' and '.' are lower): so collect, then sort.
  const lines: [key: string, path: string, line: string][] = [];
  const walk = (rel: string) => {
    const abs = rel ? join(dir, rel) : dir;
    for (const name of readdirSync(abs)) {
      const p = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(dir, p));
      let line: string;
      if (st.isSymbolicLink()) line = `l\0${readlinkSync(join(dir, p))}`;
      else if (st.isDirectory()) {
        line = 'd';
        walk(p);
      } else if (st.isFile()) {
        line = `f\0${st.size}\0${Math.floor(st.mtimeMs / 1000)}`;
        files++;
        bytes += st.size;
      } else line = `o\0${st.mode}`;
      lines.push([byteKey(p), p, line]);
    }
  };
  walk('');
  lines.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  for (const [, p, line] of lines) {
    h.update(`${p}\0${line}\n`);
    entries++;
  }
  return { digest: h.digest('hex'), entries, files, bytes };
}
