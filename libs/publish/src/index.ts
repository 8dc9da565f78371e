export * from './sign';
export * from './rsync';
export * from './publish';
export * from './digest';
export * from './approval';
export * from './vetting';
export * from './torrent';
export * from './filelist';
