// `nx g @rocky/executors:release rocky-10 --from=rocky-9 --major=10 --minor=0`: a new release
// project, the copy of an existing release file for another major/minor. Names that carry the
// major (profile, upstream project, the release's GPG key files) follow it; the RC level starts
// at 1 and a declared media respin is dropped. The source's comments are kept; its header is
// replaced by one saying where the file came from.
import type { Tree } from '@nx/devkit';
import { editRelease, firstRc, readRelease, releaseFile, wholeNumber, writeRelease, type Edit } from '../release-file';
import type { Options } from './schema';

export default async function releaseGenerator(tree: Tree, o: Options): Promise<void> {
  if (!/^[a-z0-9][a-z0-9-]*$/.test(o.name)) throw new Error(`name: ${JSON.stringify(o.name)} is not a project name (lower-case letters, digits, '-')`);
  if (tree.exists(releaseFile(o.name))) throw new Error(`${releaseFile(o.name)} already exists: choose another name, or use the bump generator`);
  const major = wholeNumber(o.major, 'major');
  const minor = wholeNumber(o.minor, 'minor');
  if (major < 1) throw new Error('--major: expected a number >= 1');
  const { text, doc, release: from } = readRelease(tree, o.from);
  const swapMajor = (s: string) => s.replace(new RegExp(`(^|[^0-9])${from.major}(?![0-9])`, 'g'), `$1${major}`);
  const edits: Edit[] = [
    { path: ['major'], value: major },
    { path: ['minor'], value: minor },
    // The upstream project is named like the release (rocky-9's is rocky-9): a new release names its own.
    { path: ['project'], value: from.project === o.from ? o.name : swapMajor(from.project) },
    { path: ['iso', 'respin'], value: undefined },
    { path: ['candidate'], value: undefined },
  ];
  // A SIG release has no profile (its latest link is named by its SIG).
  if (from.profile) edits.push({ path: ['profile'], value: swapMajor(from.profile) });
  if (from.rc) edits.push({ path: ['rc'], value: firstRc(from.rc) });
  from.extraFiles.files.forEach((f, i) => edits.push({ path: ['extraFiles', 'files', i], value: swapMajor(f) }));
  const body = editRelease(text, doc, edits).replace(/^(#[^\n]*\n)+/, '');
  const header = `# ${o.name}: made by \`nx g @rocky/executors:release ${o.name} --from=${o.from} --major=${major} --minor=${minor}\`; the comments below are ${o.from}'s.\n`;
  writeRelease(tree, o.name, header + body);
}
