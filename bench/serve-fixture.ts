// Serves an already built fixture root in its own process (benchmarks: the server must not
// share an event loop with the client being measured). Prints the URL; stops on SIGTERM, and when
// its stdin ends: the bench that started it exited or was killed (a SIGKILL leaves no handler).
import { serveFixture } from '@rocky/upstream-fixture';

serveFixture({ root: process.argv[2] }).then((s) => {
  console.log(s.url);
  const stop = () => void s.close().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.stdin.once('end', stop).resume();
});
