// The options of this executor, as schema.json declares them (tools/executors/src/plugin.spec.ts checks the two agree).
export interface Options {
  /** Print the list of checks and run none of them. */
  dryRun?: boolean;
}
