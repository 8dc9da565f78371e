import { describe, it, expect } from 'vitest';
import { parseRepomd, parsePrimary, safeHref } from './repodata';
import { parseClosureOutput } from './repoclosure';
import { closureArchArgs } from './dnf';

const H = 'a'.repeat(64);
const repomd = `<?xml version="1.0" encoding="UTF-8"?>
<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm">
  <revision>1763650000</revision>
  <data type="primary"><checksum type="sha256">${H}</checksum><open-checksum type="sha256">${'b'.repeat(64)}</open-checksum>
    <location href="repodata/${H}-primary.xml.gz"/><timestamp>1</timestamp><size>123</size><open-size>456</open-size></data>
  <data type="group"><checksum type="sha256">${'c'.repeat(64)}</checksum><location href="repodata/comps.xml"/><size>9</size></data>
</repomd>`;

const primary = (href: string, sum = H) => `<?xml version="1.0" encoding="UTF-8"?>
<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="1">
<package type="rpm"><name>bash</name><arch>x86_64</arch><version epoch="0" ver="5.1.8" rel="9.el9"/>
<checksum type="sha256" pkgid="YES">${sum}</checksum><summary>s</summary><size package="1234" installed="1" archive="1"/>
<location href="${href}"/><format><rpm:license>GPL</rpm:license><rpm:sourcerpm>bash-5.1.8-9.el9.src.rpm</rpm:sourcerpm>
<rpm:provides><rpm:entry name="bash"/></rpm:provides><rpm:requires><rpm:entry name="glibc"/></rpm:requires></format></package>
</metadata>`;

describe('repodata', () => {
  it('reads repomd records with sha256 and sizes', () => {
    const md = parseRepomd(repomd);
    expect(md.revision).toBe('1763650000');
    expect(md.records.map((r) => [r.type, r.href, r.size])).toEqual([
      ['primary', `repodata/${H}-primary.xml.gz`, 123],
      ['group', 'repodata/comps.xml', 9],
    ]);
  });

  it('reads primary packages with NEVRA, href, checksum, size and source rpm', () => {
    const [p] = parsePrimary(primary('Packages/b/bash-5.1.8-9.el9.x86_64.rpm'));
    expect(p).toEqual({
      name: 'bash', arch: 'x86_64', epoch: '0', version: '5.1.8', release: '9.el9',
      href: 'Packages/b/bash-5.1.8-9.el9.x86_64.rpm', sha256: H, size: 1234, sourcerpm: 'bash-5.1.8-9.el9.src.rpm',
    });
  });

  it.each(['../../etc/passwd', '/etc/passwd', 'Packages/../../x.rpm', 'Packages//x.rpm', 'http://evil/x.rpm', 'Packages\\..\\x.rpm', './x.rpm'])(
    'refuses the unsafe href %s',
    (href) => {
      expect(() => parsePrimary(primary(href))).toThrow(/unsafe location href/);
      expect(() => safeHref(href, 't')).toThrow();
    },
  );

  it('decodes hrefs as XML does: entities and character references (issue 18.7)', () => {
    // createrepo_c's spelling of `Packages/p/plus tools & ü.rpm`.
    expect(parsePrimary(primary('Packages/p/plus tools &amp; &#xFC;.rpm'))[0].href).toBe('Packages/p/plus tools & ü.rpm');
    expect(parsePrimary(primary('Packages/&#112;/&#x3C;&#x3e;&quot;&apos;.rpm'))[0].href).toBe(`Packages/p/<>"'.rpm`);
    expect(parseRepomd(repomd.replace(`repodata/${H}-primary.xml.gz`, `repodata/${H}-pr&#x69;mary.xml.gz`)).records[0].href).toBe(`repodata/${H}-primary.xml.gz`);
    // HTML's named entities are not XML's: they stay as written.
    expect(parsePrimary(primary('Packages/a&amp;nbsp;b.rpm'))[0].href).toBe('Packages/a&nbsp;b.rpm');
  });

  it.each(['&#x2E;&#x2E;/x.rpm', 'Packages/&#46;&#46;/&#46;&#46;/x.rpm', '&#x2F;etc/passwd', 'file&#x3A;/etc/passwd'])('decodes, then refuses, the href %s', (href) => {
    expect(() => parsePrimary(primary(href))).toThrow(/unsafe location href/);
  });

  it.each(['file:/etc/passwd', 'file:x.rpm', 'FILE:///etc/passwd', 'ftp:x.rpm', 'a\u0001b.rpm'])('refuses the URL or control character href %j (issue 18.6)', (href) => {
    expect(() => safeHref(href, 't')).toThrow(/unsafe location href/);
  });

  it('refuses xml:base on a package location, a package and repomd records (issue 18.6)', () => {
    const base = (x: string) => x.replace('<location href=', '<location xml:base="http://elsewhere.invalid/" href=');
    expect(() => parsePrimary(base(primary('Packages/x.rpm')))).toThrow(/package bash: location has xml:base "http:\/\/elsewhere.invalid\/"/);
    expect(() => parsePrimary(primary('Packages/x.rpm').replace('<package type="rpm">', '<package type="rpm" xml:base="file:///etc/">'))).toThrow(/xml:base "file:\/\/\/etc\/"/);
    expect(() => parsePrimary(primary('Packages/x.rpm').replace('<metadata ', '<metadata xml:base="file:///etc/" '))).toThrow(/xml:base/);
    expect(() => parseRepomd(base(repomd))).toThrow(/record primary: location has xml:base/);
    expect(() => parseRepomd(repomd.replace('<repomd ', '<repomd xml:base="http://x.invalid/" '))).toThrow(/xml:base/);
  });

  it('refuses non-sha256 and malformed checksums, and garbage XML', () => {
    expect(() => parseRepomd(repomd.replace('type="sha256">' + H, 'type="sha1">' + H))).toThrow(/sha1 is not supported/);
    expect(() => parsePrimary(primary('Packages/x.rpm', 'zz'))).toThrow(/malformed sha256/);
    expect(() => parseRepomd('<html>not found</html>')).toThrow(/not a repomd document/);
    expect(() => parseRepomd('<repomd><data')).toThrow(/not valid XML|not a repomd/);
  });
});

describe('primary.xml as XML', () => {
  const good = primary('Packages/x.rpm');
  it('reads CDATA, comments, single quotes, and any order of the fields', () => {
    const odd = good
      .replace('<name>bash</name>', "<!-- c --><name><![CDATA[bash]]></name>")
      .replace('<arch>x86_64</arch>', '')
      .replace('<location href="Packages/x.rpm"/>', "<location href='Packages/x.rpm'/><arch> x86_64 </arch>");
    expect(parsePrimary(odd)[0]).toMatchObject({ name: 'bash', arch: 'x86_64', href: 'Packages/x.rpm', size: 1234, sourcerpm: 'bash-5.1.8-9.el9.src.rpm' });
    expect(parsePrimary('<metadata packages="0"/>')).toEqual([]);
  });

  it.each([
    ['a tag closed by another', good.replace('</summary>', '</name>'), /closes <summary>/],
    ['an unclosed document', good.replace('</metadata>', ''), /<metadata> is not closed/],
    ['an unquoted attribute', good.replace('type="rpm"', 'type=rpm'), /malformed tag/],
    ['a DOCTYPE', good.replace('<metadata ', '<!DOCTYPE x [<!ENTITY a "b">]><metadata '), /DOCTYPE/],
    ['a reference to NUL', good.replace('<summary>s', '<summary>&#0;'), /&#0;/],
    ['text after the document', `${good}x`, /text outside/],
    ['a second document element', `${good}<metadata/>`, /second document element/],
    ['a requires entry left open', good.replace('<rpm:entry name="glibc"/>', '<rpm:entry name="glibc">'), /closes <rpm:entry>/],
  ])('refuses %s, naming the file and line', (_what, xml, why) => {
    expect(() => parsePrimary(xml, 'p.xml')).toThrow(/^p\.xml: not valid XML: .*\(line \d+\)$/);
    expect(() => parsePrimary(xml, 'p.xml')).toThrow(why);
  });
});

describe('repoclosure output', () => {
  it('names broken packages and their unresolved deps', () => {
    const out = 'package: broken-tc-1.0-1.noarch from broken\n  unresolved deps (1):\n    does-not-exist-tc\n    other >= 2\npackage: b-1-1.x86_64 from r\n  unresolved deps (1):\n    x\n';
    expect(parseClosureOutput(out)).toEqual([
      { package: 'broken-tc-1.0-1.noarch', repo: 'broken', unresolved: ['does-not-exist-tc', 'other >= 2'] },
      { package: 'b-1-1.x86_64', repo: 'r', unresolved: ['x'] },
    ]);
  });
  it('uses Rocky arch flags', () => {
    expect(closureArchArgs('aarch64')).toEqual(['--forcearch=aarch64', '--arch=aarch64', '--arch=noarch']);
    expect(closureArchArgs('x86_64')).toContain('--arch=i686');
  });
});
