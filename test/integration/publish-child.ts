// Runs one publishTree in its own process, so a test can kill it at a point counted by phase
// events, never by time. argv[2]: JSON { options: PublishOptions without log, events: file,
// killAt?: { phase: k, mid: boolean } }.
//   killAt.phase k: at the k-th `publish-phase-start` event, SIGKILL our own process group
//   (the test spawns us detached, so nothing outside dies), before that phase runs anything;
//   with mid, set PUBLISH_KILL_ON_OUTPUT instead, so the rsync wrapper the test passes as
//   options.rsync kills the group when that phase's rsync reports its first entry.
// Exit 0 and `done` when publishing ended before the k-th phase; 1 with the error when it failed.
import { eventLog } from '../../libs/exec/src';
import { publishTree, type PublishOptions } from '../../libs/publish/src';

const { options, events, killAt } = JSON.parse(process.argv[2]) as { options: PublishOptions; events: string; killAt?: { phase: number; mid: boolean } };
const base = eventLog(events);
let starts = 0;

publishTree({
  ...options,
  log: {
    info: () => {},
    event(type, data) {
      base.event(type, data);
      if (type !== 'publish-phase-start' || ++starts !== killAt?.phase) return;
      if (killAt.mid) process.env.PUBLISH_KILL_ON_OUTPUT = '1';
      else process.kill(0, 'SIGKILL');
    },
  },
}).then(
  () => console.log('done'),
  (e: Error) => {
    console.error(e.message);
    process.exitCode = 1;
  },
);
