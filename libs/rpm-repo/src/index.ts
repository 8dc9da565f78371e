export * from './repodata';
export * from './http';
export * from './signature';
export * from './limiter';
export * from './reposync';
export * from './repoclosure';
export * from './rpmsig';
