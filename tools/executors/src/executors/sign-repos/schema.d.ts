// The options of this executor, as schema.json declares them (plugin.spec.ts checks the two agree).
export interface Options {
  /** Print the trees that would be re-signed and change nothing anywhere. */
  dryRun?: boolean;
}
