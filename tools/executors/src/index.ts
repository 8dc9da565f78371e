export { createNodesV2, preTasksExecution } from './plugin';
