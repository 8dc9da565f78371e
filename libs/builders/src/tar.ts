// Unpacking a lorax tree that arrives as a tar stream from another machine. The archive is
// not trusted: GNU tar's defaults refuse `..` members and strip leading `/`, and the unpacked
// tree is checked afterwards, because a link that points out of the tree is just as harmful.
import { spawn } from 'node:child_process';
import { lstatSync, readdirSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { join, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { tail } from './types';

/**
 * Unpacks a tar archive (a stream, or a file path) into the existing dir `dest`, without the
 * archive's owners. Resolves with the number of bytes read; nothing is buffered in memory.
 */
export function extractTar(source: Readable | string, dest: string): Promise<number> {
  const fromFile = typeof source === 'string';
  const argv = ['tar', '-x', '--no-same-owner', '-f', fromFile ? source : '-', '-C', dest];
  return new Promise((resolvePromise, reject) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: [fromFile ? 'ignore' : 'pipe', 'ignore', 'pipe'] });
    let stderr = '';
    let bytes = fromFile ? statSync(source).size : 0;
    let sourceError: Error | undefined;
    child.stderr!.on('data', (d: Buffer) => {
      if (stderr.length < 64 * 1024) stderr += d.toString('utf8');
    });
    child.on('error', reject);
    if (!fromFile) {
      source.on('data', (d: Buffer) => (bytes += d.length));
      source.on('error', (e) => {
        sourceError ??= e;
        child.kill();
      });
      // tar exiting early on a bad archive shows in its exit status, not as an EPIPE here.
      child.stdin!.on('error', () => {});
      source.pipe(child.stdin!);
    }
    child.on('close', (code, signal) => {
      if (sourceError) reject(sourceError);
      else if (code === 0) resolvePromise(bytes);
      else reject(new Error(`tar -x ${signal ? `was killed by ${signal}` : `exited ${code}`}${stderr.trim() ? `: ${tail(stderr, 10)}` : ''}`));
    });
  });
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
