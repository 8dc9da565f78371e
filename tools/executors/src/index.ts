export { createNodesV2 } from './plugin';
