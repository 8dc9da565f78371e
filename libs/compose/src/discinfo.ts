// .discinfo and media.repo (empanadas-spec §2.2, §2.3; productmd doc/discinfo-1.0.rst). Both
// carry the same timestamp text: media.repo's mediaid is how anaconda pairs the two.

/**
 * The float timestamp as text with exactly six decimals (`1763650000.123456`). Python's
 * time.time() printed as repr varies in length; a fixed width keeps the file deterministic for
 * a given input and still parses as the float readers expect.
 */
export function discTimestamp(timestamp: number): string {
  if (!Number.isFinite(timestamp) || timestamp < 0) throw new Error(`discinfo: timestamp must be a non-negative number, got ${timestamp}`);
  return timestamp.toFixed(6);
}

function oneLine(value: string, what: string): string {
  if (!value || /[\r\n]/.test(value)) throw new Error(`discinfo: ${what} must be one non-empty line, got ${JSON.stringify(value)}`);
  return value;
}

/** Four lines: timestamp, release (`Rocky Linux 9.7`), arch (`src` for sources), `ALL`. */
export function renderDiscinfo(o: { timestamp: number; fullname: string; arch: string }): string {
  return `${discTimestamp(o.timestamp)}\n${oneLine(o.fullname, 'fullname')}\n${oneLine(o.arch, 'arch')}\nALL\n`;
}

/** Reads a .discinfo back; the disc list (`ALL` or `1,2`) is kept as text. */
export function parseDiscinfo(text: string): { timestamp: number; fullname: string; arch: string; discs: string } {
  const lines = text.split('\n').map((l) => l.replace(/\r$/, ''));
  if (lines.at(-1) === '') lines.pop();
  if (lines.length < 3 || lines.length > 4) throw new Error(`discinfo: expected 3 or 4 lines, got ${lines.length}`);
  const timestamp = Number(lines[0]);
  if (!lines[0] || !Number.isFinite(timestamp)) throw new Error(`discinfo line 1: not a timestamp: ${JSON.stringify(lines[0])}`);
  return { timestamp, fullname: lines[1], arch: lines[2], discs: lines[3] ?? 'ALL' };
}

/** `[InstallMedia]` for the tree; `mediaid` should be discTimestamp() of the .discinfo's timestamp. */
export function renderMediaRepo(o: { name: string; mediaid: string }): string {
  return `[InstallMedia]\nname=${oneLine(o.name, 'name')}\nmediaid=${oneLine(o.mediaid, 'mediaid')}\nmetadata_expire=-1\ngpgcheck=0\ncost=500\n`;
}
