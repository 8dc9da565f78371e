import { describe, expect, it } from 'vitest';
import { mergeModules, parseModules, renderModules, withEpoch } from './modules';

const stream = (name: string, s: string, version: string, rpms: string[]) =>
  `---\ndocument: modulemd\nversion: 2\ndata:\n  name: ${name}\n  stream: "${s}"\n  version: ${version}\n  context: c0ffee42\n  arch: x86_64\n  summary: ${name}\n  description: >-\n    ${name} ${s}.\n  license:\n    module: [MIT]\n  artifacts:\n    rpms:\n${rpms.map((r) => `    - ${r}\n`).join('')}...\n`;
const defaults = (name: string, s: string) => `---\ndocument: modulemd-defaults\nversion: 1\ndata:\n  module: ${name}\n  stream: "${s}"\n  profiles:\n    "${s}": [common]\n...\n`;

const v18 = stream('nodejs', '18', '8100020240101000000', ['nodejs-1:18.1-1.module+el8.10.0+1+c0ffee42.x86_64', 'nodejs-1:18.1-1.module+el8.10.0+1+c0ffee42.src']);
const v18b = stream('nodejs', '18', '8100020240601000000', ['nodejs-1:18.2-1.module+el8.10.0+3+c0ffee42.x86_64']);
const v20 = stream('nodejs', '20', '8100020240101000000', ['nodejs-1:20.1-1.module+el8.10.0+2+c0ffee42.x86_64']);
const gone = stream('perl', '5.24', '8100020200101000000', ['perl-4:5.24-1.module+el8.1.0+9+c0ffee42.x86_64']);

describe('module metadata', () => {
  it('reads documents with their identity and artifacts, and writes them back unchanged (64-bit versions intact)', () => {
    const docs = parseModules(v18 + defaults('nodejs', '20'));
    expect(docs.map((d) => d.key)).toEqual(['modulemd:nodejs:18:8100020240101000000:c0ffee42:x86_64', 'modulemd-defaults:nodejs']);
    expect(docs[0].artifacts).toEqual(['nodejs-1:18.1-1.module+el8.10.0+1+c0ffee42.x86_64']);
    expect(docs[0].sources).toEqual(['nodejs-1:18.1-1.module+el8.10.0+1+c0ffee42.src']);
    expect(renderModules(docs)).toContain('version: 8100020240101000000');
    expect(parseModules(renderModules(docs))).toEqual(docs);
    expect(renderModules(docs)).toContain('stream: "18"');
  });

  it('refuses what is not module metadata, naming the file', () => {
    expect(() => parseModules('---\nfoo: bar\n...\n', 'x/modules.yaml')).toThrow(/x\/modules\.yaml: document 1: not a module metadata document/);
    expect(() => parseModules('---\ndocument: modulemd\ndata: [\n', 'y.yaml')).toThrow(/y\.yaml: document 1/);
  });

  it('keeps a stream the new metadata dropped while the repo holds its packages; newer versions are added; the new metadata wins', () => {
    const before = parseModules(v18 + v20 + gone + defaults('nodejs', '18') + defaults('perl', '5.24'));
    const current = parseModules(v20 + v18b + defaults('nodejs', '20'));
    const held = new Set(['nodejs-1:18.1-1.module+el8.10.0+1+c0ffee42.x86_64', 'nodejs-1:18.2-1.module+el8.10.0+3+c0ffee42.x86_64', 'nodejs-1:20.1-1.module+el8.10.0+2+c0ffee42.x86_64']);
    const m = mergeModules(before, current, (n) => held.has(n));
    expect(m.docs.map((d) => d.key)).toEqual([
      'modulemd:nodejs:20:8100020240101000000:c0ffee42:x86_64',
      'modulemd:nodejs:18:8100020240601000000:c0ffee42:x86_64',
      'modulemd-defaults:nodejs',
      'modulemd:nodejs:18:8100020240101000000:c0ffee42:x86_64',
    ]);
    expect(m.carried).toEqual(['modulemd:nodejs:18:8100020240101000000:c0ffee42:x86_64']);
    // perl's packages are all gone from the repo: its stream and its defaults go.
    expect(m.dropped).toEqual(['modulemd:perl:5.24:8100020200101000000:c0ffee42:x86_64', 'modulemd-defaults:perl']);
    // The defaults are the new metadata's.
    expect(m.docs.find((d) => d.key === 'modulemd-defaults:nodejs')!.stream).toBe('20');
  });

  it('compares NEVRAs with the epoch (0 when unset)', () => {
    expect(withEpoch('bash-5.1-1.el9.x86_64')).toBe('bash-0:5.1-1.el9.x86_64');
    expect(withEpoch('perl-4:5.24-1.module+el8.1.0+9+c0ffee42.x86_64')).toBe('perl-4:5.24-1.module+el8.1.0+9+c0ffee42.x86_64');
  });
});
