import { describe, expect, it } from 'vitest';
import { filterUpdateinfo } from './updateinfo';
import { parseUpdateinfo } from './repodata';

// Apollo's shape: no declaration, one collection per repo (and per module).
const doc = `<updates>
  <update from="releng@rockylinux.org" status="final" type="security" version="2">
    <id>RLSA-2025:0001</id>
    <title>Important: bash &amp; glibc security update</title>
    <issued date="2025-11-20 00:00:00"/>
    <description>one
two</description>
    <references><reference href="https://errata.rockylinux.org/RLSA-2025:0001?a=1&amp;b=2" id="RLSA-2025:0001" type="self" title="RLSA-2025:0001"/></references>
    <pkglist>
      <collection short="rocky-linux-8-x86-64-baseos-rpms">
        <name>rocky-linux-8-x86-64-baseos-rpms</name>
        <package name="bash" arch="x86_64" epoch="0" version="4.4" release="1.el8" src="bash-4.4-1.el8.src.rpm"><filename>bash-4.4-1.el8.x86_64.rpm</filename></package>
        <package name="glibc" arch="x86_64" epoch="0" version="2.28" release="9.el8" src="glibc-2.28-9.el8.src.rpm"><filename>glibc-2.28-9.el8.x86_64.rpm</filename></package>
      </collection>
    </pkglist>
  </update>
  <update from="releng@rockylinux.org" status="final" type="enhancement" version="2">
    <id>RLEA-2025:0002</id>
    <title>nodejs:20</title>
    <pkglist>
      <collection short="rocky-linux-8-x86-64-appstream-rpms__nodejs">
        <name>rocky-linux-8-x86-64-appstream-rpms__nodejs</name>
        <module name="nodejs" stream="20" version="8100020240101000000" context="c0ffee42" arch="x86_64"/>
        <package name="nodejs" arch="x86_64" epoch="1" version="20.1" release="1.module+el8.10.0+2+c0ffee42" src="x"><filename>nodejs-20.1-1.module+el8.10.0+2+c0ffee42.x86_64.rpm</filename></package>
      </collection>
    </pkglist>
  </update>
</updates>
`;

describe('errata cut to a tree', () => {
  it('keeps only the packages the tree holds, drops an advisory left with none, keeps the rest of the document', () => {
    const r = filterUpdateinfo(doc, (n) => n === 'bash-0:4.4-1.el8.x86_64', 'BaseOS');
    expect(r.kept).toEqual(['RLSA-2025:0001']);
    expect(r.dropped).toEqual(['RLEA-2025:0002']);
    expect(parseUpdateinfo(r.xml)).toEqual([{ id: 'RLSA-2025:0001', type: 'security', packages: ['bash-0:4.4-1.el8.x86_64'] }]);
    expect(r.xml).toContain('<title>Important: bash &amp; glibc security update</title>');
    expect(r.xml).toContain('href="https://errata.rockylinux.org/RLSA-2025:0001?a=1&amp;b=2"');
    expect(r.xml).toContain('<description>one\ntwo</description>');
  });

  it('matches epochs and keeps module collections whole', () => {
    const r = filterUpdateinfo(doc, (n) => n === 'nodejs-1:20.1-1.module+el8.10.0+2+c0ffee42.x86_64');
    expect(r.kept).toEqual(['RLEA-2025:0002']);
    expect(r.xml).toMatch(/<module name="nodejs" stream="20" version="8100020240101000000" context="c0ffee42" arch="x86_64"\/>/);
    expect(filterUpdateinfo(doc, () => false).kept).toEqual([]);
  });

  it('names the source of a document that is not updateinfo', () => {
    expect(() => filterUpdateinfo('<html><body>502</body></html>', () => true, 'https://apollo/x')).toThrow(/https:\/\/apollo\/x: not an updateinfo document/);
  });
});
