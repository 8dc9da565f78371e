// Quoting for the one place a shell string is unavoidable: the command line ssh hands to the
// remote login shell. Every word is built from an argv array and quoted here, nowhere else.

const SAFE = /^[A-Za-z0-9_./:@%+,-]+$/;

/** One word for a POSIX shell: bare when it cannot be misread, else single-quoted. */
export function shQuote(word: string): string {
  // `=` is left out of SAFE: as a first word `a=b` would be an assignment, not a command.
  return word !== '' && SAFE.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/** A command line that any POSIX shell (and csh/fish, for single-quoted words) splits back into `argv`. */
export const shJoin = (argv: string[]) => argv.map(shQuote).join(' ');

/**
 * `sh -c <script> releng <args...>` as one remote command line: the script sees the values as
 * "$@", so they never pass through a second round of quoting, and the remote user's login
 * shell (bash, csh, fish...) only has to split single-quoted words.
 */
export const remoteSh = (script: string, args: string[] = []) => shJoin(['sh', '-c', script, 'releng', ...args]);
