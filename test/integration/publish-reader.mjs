// A mirror client hammering a tree while it is being published (run as its own process, so the
// publisher's event loop cannot pace it): every pass finds each repodata/repomd.xml, reads it,
// checks every file it names, reads primary and checks every package href it names (existence
// and size). A reference to a missing or wrong-sized file is "dangling"; an unparsable
// repomd.xml is "torn". With each repomd.xml it also reads repomd.xml.asc right after, and keeps
// the distinct pairs, so a test can check that a repomd.xml never appeared before its signature.
// Every pass also runs `sha256sum -c` on every checksum list (CHECKSUM, *.CHECKSUM, CHECKSUM.asc),
// as a mirror user would: a file that fails it is a "mismatch"; and it looks for rsync temp names
// (`.~tmp~`, `.<name>.XXXXXX`) anywhere in the tree: each one seen is a "temp".
//   node publish-reader.mjs <out.json> <root>...   (SIGTERM: finish the pass, write stats, exit 0)
// It exits by itself when its stdin closes (the test process that started it is gone).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';

const require = createRequire(import.meta.url);
const { XMLParser } = require('fast-xml-parser');
const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@', isArray: (n) => n === 'data' || n === 'package' });

const [out, ...roots] = process.argv.slice(2);
const stats = { iterations: 0, reads: 0, refs: 0, dangling: 0, torn: 0, samples: [], pairs: [], checksumLists: 0, mismatches: 0, temps: 0, otherSamples: [] };
const pairs = new Set();
let stop = false;
process.on('SIGTERM', () => (stop = true));
process.stdin.on('data', () => {});
process.stdin.on('end', () => process.exit(3));

const note = (kind, msg) => {
  stats[kind]++;
  if (stats.samples.length < 50) stats.samples.push(`${kind}: ${msg}`);
};
const hash = (b) => createHash('sha256').update(b).digest('hex');
const tryRead = (f) => {
  try {
    return readFileSync(f);
  } catch {
    return null;
  }
};
const trySize = (f) => {
  try {
    return statSync(f).size;
  } catch {
    return -1;
  }
};

function findRepomds(dir, acc) {
  let ents;
  try {
    ents = readdirSync(dir, { withFileTypes: true });
  } catch {
    return acc; // vanished while we walked: not a reference
  }
  for (const e of ents) {
    if (!e.isDirectory() || e.name.startsWith('.~tmp~') || e.name === 'Packages') continue;
    if (e.name === 'repodata') acc.push(join(dir, e.name, 'repomd.xml'));
    else findRepomds(join(dir, e.name), acc);
  }
  return acc;
}

function check(repomdFile) {
  const xml = tryRead(repomdFile);
  if (xml === null) return; // no repomd.xml: nothing is referenced
  const asc = tryRead(`${repomdFile}.asc`);
  const key = `${repomdFile}\0${hash(xml)}\0${asc ? hash(asc) : ''}`;
  if (!pairs.has(key)) {
    pairs.add(key);
    stats.pairs.push({ path: repomdFile, repomd: hash(xml), asc: asc ? hash(asc) : null });
  }
  stats.reads++;
  let md;
  try {
    md = parser.parse(xml.toString('utf8'));
    if (!md.repomd || !Array.isArray(md.repomd.data)) throw new Error('no data');
  } catch (e) {
    note('torn', `${repomdFile}: ${e.message}`);
    return;
  }
  const base = dirname(dirname(repomdFile));
  let primary;
  for (const d of md.repomd.data) {
    const href = d.location['@href'];
    const size = Number(d.size);
    stats.refs++;
    const got = trySize(join(base, href));
    if (got !== size) note('dangling', `${repomdFile} names ${href} (${size} bytes): ${got < 0 ? 'missing' : `${got} bytes`}`);
    else if (d['@type'] === 'primary') primary = join(base, href);
  }
  if (!primary) return;
  const gz = tryRead(primary);
  if (gz === null) return note('dangling', `${primary} vanished while read`);
  let pkgs;
  try {
    pkgs = parser.parse(gunzipSync(gz).toString('utf8')).metadata.package ?? [];
  } catch (e) {
    return note('torn', `${primary}: ${e.message}`);
  }
  for (const p of pkgs) {
    const href = p.location['@href'];
    const size = Number(p.size['@package']);
    stats.refs++;
    const got = trySize(join(base, href));
    if (got !== size) note('dangling', `${primary} names ${href} (${size} bytes): ${got < 0 ? 'missing' : `${got} bytes`}`);
  }
}

const TEMP = /^\.~tmp~|^\.[^/]+\.[A-Za-z0-9]{6}$/;
const CHECKSUM_LIST = /(^|\.)CHECKSUM(\.asc)?$/;
const other = (kind, msg) => {
  stats[kind]++;
  if (stats.otherSamples.length < 50) stats.otherSamples.push(`${kind}: ${msg}`);
};

/** Temp names (counted) and checksum lists (returned) under dir. */
function walkAll(dir, lists) {
  let ents;
  try {
    ents = readdirSync(dir, { withFileTypes: true });
  } catch {
    return lists;
  }
  for (const e of ents) {
    const p = join(dir, e.name);
    if (TEMP.test(e.name)) other('temps', p);
    if (e.isDirectory()) walkAll(p, lists);
    else if (CHECKSUM_LIST.test(e.name)) lists.push(p);
  }
  return lists;
}

function checkSums(list) {
  const r = spawnSync('sha256sum', ['-c', '--quiet', list.slice(list.lastIndexOf('/') + 1)], { cwd: dirname(list), encoding: 'utf8' });
  if (r.error) return; // its directory vanished: nothing was checked
  if (r.status === 0) return void stats.checksumLists++;
  // The list itself vanished while we read it: nothing was checked.
  if (/No such file or directory/.test(r.stderr) && !/FAILED/.test(r.stdout)) return;
  stats.checksumLists++;
  for (const line of r.stdout.split('\n')) if (/: FAILED/.test(line)) other('mismatches', `${list}: ${line}`);
}

function pass() {
  for (const r of roots) for (const f of findRepomds(r, [])) check(f);
  for (const r of roots) for (const l of walkAll(r, [])) checkSums(l);
  stats.iterations++;
  process.stdout.write(`pass ${stats.iterations}\n`);
}

pass();
process.stdout.write('ready\n');
const loop = () => {
  if (stop) {
    writeFileSync(out, JSON.stringify(stats));
    process.exit(0);
  }
  pass();
  setImmediate(loop);
};
setImmediate(loop);
