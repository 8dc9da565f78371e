// `nx g @rocky/executors:bump rocky-9 --minor=8`: the release moves to its next minor. The RC
// level starts again at 1, and a declared respin of the previous minor's media is dropped, so the
// next compose is a full produce compose again. Without --minor: the next one.
import type { Tree } from '@nx/devkit';
import { editRelease, firstRc, readRelease, wholeNumber, writeRelease, type Edit } from '../release-file';
import type { Options } from './schema';

export default async function bumpGenerator(tree: Tree, o: Options): Promise<void> {
  const { text, doc, release: cur } = readRelease(tree, o.name);
  const minor = o.minor === undefined ? cur.minor + 1 : wholeNumber(o.minor, 'minor');
  if (minor <= cur.minor) throw new Error(`--minor=${minor}: ${o.name} is at minor ${cur.minor} already; a bump goes forward`);
  const edits: Edit[] = [
    { path: ['minor'], value: minor },
    { path: ['iso', 'respin'], value: undefined },
  ];
  if (cur.rc) edits.push({ path: ['rc'], value: firstRc(cur.rc) });
  writeRelease(tree, o.name, editRelease(text, doc, edits));
}
