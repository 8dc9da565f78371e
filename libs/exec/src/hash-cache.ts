// sha256 of many files, each hashed once: a file whose inode, size, mtime and ctime are what they
// were when it was hashed is not read again. ctime is the kernel's own record that an inode
// changed (a write, a chmod, utimes setting the mtime back, a new link): it cannot be set from
// user space, so bytes changed under a kept size and mtime are still seen. Kept in a JSON file
// between runs (vetting hashes a staged tree once; prod's approval check then reads only what
// changed since).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { hashFiles } from './hash-workers';
import { writeJsonAtomic } from './fs';

interface CacheFile {
  version: 1;
  /** `dev:ino` → [`size:mtimeNs:ctimeNs`, sha256]. */
  entries: Record<string, [string, string]>;
}

export class HashCache {
  private entries = new Map<string, [string, string]>();
  private used = new Set<string>();
  hashed = 0;
  reused = 0;

  constructor(readonly file?: string) {
    if (file && existsSync(file)) {
      try {
        const c = JSON.parse(readFileSync(file, 'utf8')) as CacheFile;
        if (c.version === 1) this.entries = new Map(Object.entries(c.entries));
      } catch {
        // a damaged cache is an empty one: everything is hashed again
      }
    }
  }

  /** The sha256 of each file (following symlinks), in order; what is unchanged since it was hashed is not read. */
  async sha256(files: readonly string[], parallelism?: number): Promise<string[]> {
    const keys = files.map((f) => {
      const st = statSync(f, { bigint: true });
      return { key: `${st.dev}:${st.ino}`, stamp: `${st.size}:${st.mtimeNs}:${st.ctimeNs}` };
    });
    const out = new Array<string>(files.length);
    const todo = new Map<string, { file: string; stamp: string }>();
    keys.forEach(({ key, stamp }, i) => {
      this.used.add(key);
      const e = this.entries.get(key);
      if (e && e[0] === stamp) out[i] = e[1];
      else if (!todo.has(key)) todo.set(key, { file: files[i], stamp });
    });
    const list = [...todo];
    // The stamp was taken before reading: a file changed while it was hashed is read again next time.
    const sums = await hashFiles(list.map(([, v]) => v.file), 'sha256', parallelism);
    list.forEach(([key, v], i) => this.entries.set(key, [v.stamp, sums[i]]));
    keys.forEach(({ key }, i) => (out[i] ??= this.entries.get(key)![1]));
    this.hashed += list.length;
    this.reused += files.length - list.length;
    return out;
  }

  /** Writes the entries used since the cache was opened (others are of files that are gone). */
  save(): void {
    if (!this.file) return;
    const entries: CacheFile['entries'] = {};
    for (const k of this.used) {
      const e = this.entries.get(k);
      if (e) entries[k] = e;
    }
    writeJsonAtomic(this.file, { version: 1, entries } satisfies CacheFile);
  }
}
