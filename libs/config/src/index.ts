export * from './schema';
export * from './load';
export * from './names';
export * from './layout';
