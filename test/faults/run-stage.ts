// Runs one stage in its own process so a test can SIGKILL it mid-work, through the runner and the
// registry the executors use. argv[2]: the target (sync, iso-<arch>, iso-extra, cloud, finalize,
// staging…); argv[3]: a JSON stage context (StageContextInput: no log, no functions).
//
// Kill points are counted, not timed: every mutating file-system call (rename, link, symlink,
// copy, unlink, the first write to a file) and every tool spawned is one "op". Stages here take
// 50 ms to 15 s and the machine is shared, so a wall-clock point would often land before or
// after the work; an op index lands at the same place in the work however slow the host is.
//   FAULT_COUNT=1     print `fault-ops <n>` at exit (the uninterrupted run measures n)
//   FAULT_AT=<k>      at op k, print `fault-point <k> <what>` and freeze the event loop: the test
//                     then SIGKILLs this process group (tools it spawned die with it)
// The module objects themselves (an `import * as` would be a copy under swc's interop).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const fs = require('node:fs') as typeof import('node:fs');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const cp = require('node:child_process') as typeof import('node:child_process');
const say = ((w) => (line: string) => w(1, `${line}\n`))(fs.writeSync); // unpatched: our own output is no op
import { runStage, stageContext, stageForTarget, type StageContextInput } from '../../libs/stages/src';

let ops = 0;
const faultAt = Number(process.env.FAULT_AT ?? 0);
if (faultAt) {
  // Freezing and being killed as a group is only safe in a group of our own (spawned detached).
  const pgrp = Number(fs.readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ')[2]);
  if (pgrp !== process.pid) {
    console.error('run-stage: FAULT_AT needs its own process group (spawn detached)');
    process.exit(2);
  }
}
function op(what: string, after?: () => void) {
  if (++ops !== faultAt) return;
  after?.(); // a spawn is counted once the tool runs, so the kill lands mid-tool
  say(`fault-point ${ops} ${what}`);
  // Block this thread (not just the loop) until the test kills us; 60 s is only a backstop.
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60_000);
  process.exit(3);
}

// Patched on the module objects: the libs (swc → CJS) read these properties at call time.
const patch = (obj: Record<string, any>, names: string[], label: string) => {
  for (const n of names) {
    const orig = obj[n] as (...a: unknown[]) => unknown;
    if (typeof orig !== 'function') continue;
    obj[n] = function (this: unknown, ...a: unknown[]) {
      op(`${label}${n} ${typeof a[0] === 'string' ? a[0] : ''}`);
      return orig.apply(this, a);
    };
  }
};
const mutating = ['rename', 'link', 'symlink', 'copyFile', 'unlink', 'rm'];
patch(fs as unknown as Record<string, any>, [...mutating, ...mutating.map((n) => `${n}Sync`), 'writeFileSync'], 'fs.');
// Writes count once per open file: how a stream or a tool's log output is chunked depends on
// timing, the set of files written does not.
const written = new Set<number>();
for (const n of ['write', 'writev', 'writeSync']) {
  const orig = (fs as unknown as Record<string, (...a: unknown[]) => unknown>)[n];
  (fs as unknown as Record<string, unknown>)[n] = function (this: unknown, fd: number, ...a: unknown[]) {
    if (!written.has(fd)) {
      written.add(fd);
      op(`fs.${n} (fd ${fd})`);
    }
    return orig.call(this, fd, ...a);
  };
}
for (const n of ['close', 'closeSync']) {
  const orig = (fs as unknown as Record<string, (...a: unknown[]) => unknown>)[n];
  (fs as unknown as Record<string, unknown>)[n] = function (this: unknown, fd: number, ...a: unknown[]) {
    written.delete(fd);
    return orig.call(this, fd, ...a);
  };
}
patch(fs.promises as unknown as Record<string, any>, [...mutating, 'writeFile'], 'fsp.');
const spawn = cp.spawn;
(cp as unknown as Record<string, unknown>).spawn = function (this: unknown, ...a: Parameters<typeof cp.spawn>) {
  let child: ReturnType<typeof cp.spawn> | undefined;
  op(`spawn ${a[0]}`, () => (child = spawn.apply(this, a)));
  return child ?? spawn.apply(this, a);
};

const [target, json] = process.argv.slice(2);
if (process.env.FAULT_COUNT) process.on('exit', () => say(`fault-ops ${ops}`));
stageForTarget(target).then(
  (stage) =>
    runStage(stage, stageContext({ ...(JSON.parse(json) as StageContextInput), target })).then(
      () => process.exit(0),
      (e: Error) => {
        console.error(e.message);
        process.exit(1);
      },
    ),
  (e: Error) => {
    console.error(`run-stage: ${e.message}`);
    process.exit(2);
  },
);
