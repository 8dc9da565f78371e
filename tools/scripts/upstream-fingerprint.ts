// Prints a fingerprint of upstream state for an Nx `runtime` input (research/nx-notes.md §3.4):
// `repos <release>`: one small GET (or read, for the fixture) of every repomd.xml;
// `cloud <release>`: the listing of the cloud image source.
// It never fails the hash: when upstream cannot be read it prints a line that is different every
// time, so the task can never be a cache hit on an unknown upstream: sync runs and reports why.
import { randomUUID } from 'node:crypto';
import { upstreamFingerprint, cloudFingerprint } from '../../libs/stages/src/upstream';

const [what, release] = process.argv.slice(2);
const root = process.cwd();
(what === 'cloud' ? cloudFingerprint(root, release) : upstreamFingerprint(root, release)).then(
  (fp) => console.log(fp),
  (e: Error) => console.log(`unavailable (${randomUUID()}): ${e.message}`),
);
