// Runs the sync stage in its own process (for kill -9 tests): argv[2] is a JSON StageContext.
import { syncStage } from '../../libs/stages/src/sync';
import type { StageContext } from '../../libs/stages/src/context';

const ctx = JSON.parse(process.argv[2]) as StageContext;
syncStage(ctx).then(
  () => process.exit(0),
  (e: Error) => {
    console.error(e.message);
    process.exit(1);
  },
);
