// Runs the sync stage in its own process (for kill -9 tests): argv[2] is a JSON StageContext.
import { syncStage, type StageContext } from '@rocky/stages';

const ctx = JSON.parse(process.argv[2]) as StageContext;
syncStage(ctx).then(
  () => process.exit(0),
  (e: Error) => {
    console.error(e.message);
    process.exit(1);
  },
);
