// Prints a fingerprint of upstream state for an Nx `runtime` input (research/nx-notes.md §3.4):
// `repos <release>`: one small GET (or read, for the fixture) of every repomd.xml;
// `cloud <release>`: the listing of the cloud image source;
// `compose <release> <compose> <produce|update>`: what pungi would make that compose from (its
// config files, koji's content for its tags), libs/stages pungi-inputs.ts.
// It never fails the hash: when upstream cannot be read it prints a line that is different every
// time, so the task can never be a cache hit on an unknown upstream: sync runs and reports why.
// So does a compose whose recorded pungi compose is damaged or gone here: the task reruns.
import { randomUUID } from 'node:crypto';
import { upstreamFingerprint, cloudFingerprint } from '../../libs/stages/src/upstream';
import { pungiComposeFingerprint } from '../../libs/stages/src/pungi-inputs';

const [what, release, compose, kind] = process.argv.slice(2);
const root = process.cwd();

async function fingerprint(): Promise<string> {
  if (what === 'cloud') return cloudFingerprint(root, release);
  if (what === 'compose') {
    if (kind !== 'produce' && kind !== 'update') throw new Error(`compose ${release} ${compose}: kind ${kind} is not produce or update`);
    const { fingerprint, damage } = await pungiComposeFingerprint(root, release, compose, kind);
    return damage.length ? `${fingerprint}; recorded compose not whole (${randomUUID()}): ${damage[0]}` : fingerprint;
  }
  return upstreamFingerprint(root, release);
}

fingerprint().then(
  (fp) => console.log(fp),
  (e: Error) => console.log(`unavailable (${randomUUID()}): ${e.message}`),
);
