// Serves an already built fixture root in its own process (benchmarks: the server must not
// share an event loop with the client being measured). Prints the URL; stops on SIGTERM.
import { serveFixture } from '@rocky/upstream-fixture';

serveFixture({ root: process.argv[2] }).then((s) => {
  console.log(s.url);
  process.once('SIGTERM', () => void s.close().then(() => process.exit(0)));
});
