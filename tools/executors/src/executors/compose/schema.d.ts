// The options of this executor, as schema.json declares them (plugin.spec.ts checks the two agree).
export interface Options {
  /** Print the plan of this target and of every task it depends on (the pungi-koji command line), and change nothing anywhere (no compose, link, store object, staging or production file, Nx cache entry). */
  dryRun?: boolean;
}
