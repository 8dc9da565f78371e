// Unpacking a lorax tree that arrives as a tar stream from another machine. The archive is
// not trusted: GNU tar's defaults refuse `..` members and strip leading `/`, and the unpacked
// tree is checked afterwards, because a link that points out of the tree is just as harmful.
import { lstatSync, readdirSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { join, sep } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { run, ToolError } from '@rocky/exec';
import { tail } from './types';

/**
 * Unpacks a tar archive (a stream, or a file path) into the existing dir `dest`, without the
 * archive's owners. Resolves with the number of bytes read; nothing is buffered in memory. A
 * failing stream fails it with the stream's error.
 */
export async function extractTar(source: Readable | string, dest: string): Promise<number> {
  const fromFile = typeof source === 'string';
  let bytes = fromFile ? statSync(source).size : 0;
  // Fed through a stream of its own: tar stops reading at the archive's end marker, and the
  // runner then ends its input; the caller's stream stays, to read what follows and how it ended.
  const feed = fromFile ? undefined : source.pipe(new PassThrough());
  if (!fromFile) source.once('error', (e) => feed!.destroy(e));
  const unpacked = run(['tar', '-x', '--no-same-owner', '-f', fromFile ? source : '-', '-C', dest], { input: feed });
  if (!fromFile) source.on('data', (d: Buffer) => (bytes += d.length));
  try {
    await unpacked;
  } catch (e) {
    if (!(e instanceof ToolError)) throw e;
    const r = e.result;
    throw new Error(`tar -x ${r.signal ? `was killed by ${r.signal}` : `exited ${r.code}`}${r.stderr.trim() ? `: ${tail(r.stderr, 10)}` : ''}`, { cause: e });
  }
  return bytes;
}

/**
 * Checks an unpacked archive: exactly the `top` entries at its root, only files, directories and
 * symlinks that stay inside it (no devices, no links to `/etc` or `../..`).
 */
export function checkExtracted(dest: string, top: string[]): void {
  const entries = readdirSync(dest).sort();
  const unexpected = entries.filter((e) => !top.includes(e));
  const missing = top.filter((t) => !entries.includes(t));
  if (unexpected.length || missing.length) {
    throw new Error(
      `the archive should hold ${top.join(', ')} only` +
        (missing.length ? `; missing ${missing.join(', ')}` : '') +
        (unexpected.length ? `; unexpected ${unexpected.join(', ')}` : ''),
    );
  }
  const root = realpathSync.native(dest);
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      const st = lstatSync(p);
      if (st.isDirectory()) walk(p);
      else if (st.isSymbolicLink()) {
        // Resolved by the kernel's rules (realpath(3)): `a -> b/../..` with `b -> .` escapes although
        // it reads as safe, and Node's JS realpathSync resolves such `..` lexically and misses it.
        let to: string | undefined;
        try {
          to = realpathSync.native(p);
        } catch {
          to = undefined;
        }
        if (!to || !(to + sep).startsWith(root + sep)) throw new Error(`${p.slice(root.length + 1)} links outside the tree (${readlinkSync(p)})`);
      } else if (!st.isFile()) throw new Error(`${p.slice(root.length + 1)} is not a regular file, directory or symlink`);
    }
  };
  walk(root);
}
