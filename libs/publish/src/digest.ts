// The digest of a published tree: what `prod` approval names. sha256 over every entry sorted by
// path (byte order): relative path, type, and for files size, mtime (whole seconds, what rsync
// preserves everywhere) and the sha256 of their content, for symlinks the target. An approval
// covers the bytes: four bytes changed under a kept size and mtime change the digest. Files are
// hashed through a HashCache, so what vetting already hashed is not read again. Directories
// contribute path and type only: their size depends on the filesystem and their time on rsync's
// temp dirs, not on content. Symlink times are left out too: a link is its target.
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { HashCache } from '@rocky/exec';

export interface TreeDigest {
  digest: string;
  entries: number;
  files: number;
  bytes: number;
}

/** Sort key in UTF-8 byte order: a latin1 string of the UTF-8 bytes compares bytewise. */
const byteKey = (p: string) => (/[^\x00-\x7f]/.test(p) ? Buffer.from(p).toString('latin1') : p);

export async function treeDigest(dir: string, cache = new HashCache()): Promise<TreeDigest> {
  const h = createHash('sha256');
  let files = 0;
  let bytes = 0;
  // Depth-first in sorted order yields globally sorted paths only if `/` sorts before every name
  // byte, which it does not ('-' and '.' are lower): so collect, then sort.
  const lines: [key: string, path: string, line: string][] = [];
  const contents: { path: string; at: number }[] = [];
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
        contents.push({ path: p, at: lines.length });
        files++;
        bytes += st.size;
      } else line = `o\0${st.mode}`;
      lines.push([byteKey(p), p, line]);
    }
  };
  walk('');
  const sums = await cache.sha256(contents.map((c) => join(dir, c.path)));
  contents.forEach((c, i) => (lines[c.at][2] += `\0${sums[i]}`));
  lines.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  for (const [, p, line] of lines) h.update(`${p}\0${line}\n`);
  return { digest: h.digest('hex'), entries: lines.length, files, bytes };
}
