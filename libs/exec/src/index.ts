export * from './run';
export * from './fs';
export * from './events';
export * from './hash-workers';
export * from './gpg';
export * from './signing';
export * from './hash-cache';
export * from './version';
