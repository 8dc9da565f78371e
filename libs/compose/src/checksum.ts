// Rocky's CHECKSUM files (empanadas-spec §2.4, pungi image_checksum): BSD-tag lines as written
// by `sha256sum --tag`, each preceded by a `# <name>: <size> bytes` comment. Entries are sorted so
// the combined file no longer depends on directory order (spec §6.2.8).
import { byteOrder } from './order';

export interface ChecksumEntry {
  /** File name as it appears in the directory (a symlink alias gets its own entry). */
  name: string;
  /** Size in bytes of the file (following symlinks); UNKNOWN_SIZE when a parsed file had no comment. */
  size: number;
  /** Lowercase hex SHA-256. */
  sha256: string;
}

/** `size` of entries parsed from a file without size comments; such entries render without one. */
export const UNKNOWN_SIZE = -1;

const HEX64 = /^[0-9a-fA-F]{64}$/;

function checkName(name: string): string {
  // sha256sum escapes names with a backslash or newline ("\SHA256 (...)"); we refuse them instead
  // of writing a form other readers get wrong.
  if (!name || /[\\\n\r]/.test(name)) throw new Error(`checksum: unsupported file name ${JSON.stringify(name)}`);
  return name;
}

export function renderChecksum(entries: ChecksumEntry[]): string {
  const sorted = [...entries].sort((a, b) => byteOrder(a.name, b.name));
  let out = '';
  sorted.forEach((e, i) => {
    checkName(e.name);
    if (i > 0 && sorted[i - 1].name === e.name) throw new Error(`checksum: duplicate entry for ${e.name}`);
    if (!HEX64.test(e.sha256)) throw new Error(`checksum: ${e.name}: not a SHA-256 hex digest: ${JSON.stringify(e.sha256)}`);
    if (e.size !== UNKNOWN_SIZE) {
      if (!Number.isSafeInteger(e.size) || e.size < 0) throw new Error(`checksum: ${e.name}: invalid size ${e.size}`);
      out += `# ${e.name}: ${e.size} bytes\n`;
    }
    out += `SHA256 (${e.name}) = ${e.sha256.toLowerCase()}\n`;
  });
  return out;
}

/**
 * Parses a CHECKSUM or `<file>.CHECKSUM`. Size comments are optional; other `#` comments and
 * blank lines are skipped, as `sha256sum -c` does. Anything else (other algorithms, GNU-style
 * `<hex>  <name>` lines, a size comment not followed by its entry) throws naming the line.
 * Entries are returned in file order.
 */
export function parseChecksum(text: string): ChecksumEntry[] {
  const out: ChecksumEntry[] = [];
  let pending: { name: string; size: number; line: number } | undefined;
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  lines.forEach((raw, i) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    const fail = (msg: string) => new Error(`CHECKSUM line ${i + 1}: ${msg}: ${JSON.stringify(line)}`);
    const size = /^# (.+): (\d+) bytes$/.exec(line);
    if (size) {
      if (pending) throw fail(`size comment for ${pending.name} (line ${pending.line}) has no checksum line`);
      pending = { name: size[1], size: Number(size[2]), line: i + 1 };
      return;
    }
    if (!line.trim() || line.startsWith('#')) return;
    // Greedy name: BSD-tag names are not escaped, so the digest follows the last ") = ".
    const tag = /^([A-Za-z0-9-]+) \((.*)\) = (\S*)$/.exec(line);
    if (!tag) throw fail('not a BSD-tag checksum line');
    const [, algo, name, hex] = tag;
    if (algo !== 'SHA256') throw fail(`unsupported algorithm ${algo}`);
    if (!HEX64.test(hex)) throw fail('digest is not 64 hex digits');
    checkName(name);
    let entrySize = UNKNOWN_SIZE;
    if (pending) {
      if (pending.name !== name) throw fail(`size comment on line ${pending.line} is for ${pending.name}`);
      entrySize = pending.size;
      pending = undefined;
    }
    out.push({ name, size: entrySize, sha256: hex.toLowerCase() });
  });
  if (pending) throw new Error(`CHECKSUM line ${pending.line}: size comment for ${pending.name} has no checksum line`);
  return out;
}
