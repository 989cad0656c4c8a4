import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Exclusions, fnmatchRegex, loadExclusions, parseRules } from '../src/unify/exclusions.js';
import { scanRootfs } from '../src/unify/scan.js';
import { tempDir } from './helpers.js';

const rules = (text: string) => new Exclusions(parseRules(text, 'test'));

describe('unify exclusions (vunify format)', () => {
  it('parses kinds, comments and blank lines, and remembers where each rule came from', () => {
    const r = parseRules('# comment\n\n+/usr/*\n-/etc/x\n/etc/y\n~/proc\n  # indented comment\n', 'list');
    expect(r.map((x) => [x.kind, x.pattern, x.source])).toEqual([
      ['include', '/usr/*', 'list:3'],
      ['exclude', '/etc/x', 'list:4'],
      ['exclude', '/etc/y', 'list:5'],
      ['skip', '/proc', 'list:6'],
    ]);
    expect(() => parseRules('+\n', 'list')).toThrow(expect.objectContaining({ code: 'UNIFY_BAD_EXCLUDE', message: expect.stringContaining('list:1') }));
  });

  it('matches like fnmatch(3) with no flags: * crosses /, ?, classes, negation, escapes', () => {
    const m = (p: string, s: string) => fnmatchRegex(p).test(s);
    expect(m('/etc/*', '/etc/ssh/sshd_config')).toBe(true);
    expect(m('*.pem', '/etc/ssl/a.pem')).toBe(true);
    expect(m('/etc/ssh/*key*', '/etc/ssh/ssh_host_rsa_key.pub')).toBe(true);
    expect(m('/etc/ssh/*key*', '/etc/ssh/sshd_config')).toBe(false);
    expect(m('/tmp/?', '/tmp/a')).toBe(true);
    expect(m('/tmp/?', '/tmp/ab')).toBe(false);
    expect(m('/v[0-9]', '/v7')).toBe(true);
    expect(m('/v[!0-9]', '/v7')).toBe(false);
    expect(m('/v[[:alpha:]]', '/vx')).toBe(true);
    expect(m('/a\\*b', '/a*b')).toBe(true);
    expect(m('/a\\*b', '/axb')).toBe(false);
    expect(m('/a.b', '/axb')).toBe(false);
    expect(m('/[]x]', '/]')).toBe(true);
    expect(m('/unclosed[', '/unclosed[')).toBe(true);
  });

  it('the first matching rule wins; without a match a path inherits its directory', () => {
    const ex = rules('+/etc/ssh/moduli\n-/etc/ssh\n-/etc/ssh/moduli\n');
    expect(ex.decide('/etc/ssh/moduli', ex.decide('/etc/ssh'))).toBe('include');
    expect(ex.decide('/etc/ssh', 'include')).toBe('exclude');
    expect(ex.decide('/etc/ssh/sshd_config', 'exclude')).toBe('exclude');
    expect(ex.decide('/usr/bin/ls', 'include')).toBe('include');
    expect(ex.match('/etc/ssh/moduli')?.source).toBe('test:1');
  });

  it('the default list skips virtual trees and excludes identity and secrets', async () => {
    const ex = await loadExclusions({});
    expect(ex.decide('/proc')).toBe('skip');
    expect(ex.decide('/var/log')).toBe('skip');
    expect(ex.decide('/etc/passwd')).toBe('exclude');
    expect(ex.decide('/etc/shadow')).toBe('exclude');
    expect(ex.decide('/etc/hostname')).toBe('exclude');
    expect(ex.decide('/etc/machine-id')).toBe('exclude');
    expect(ex.decide('/etc/ssh/ssh_host_ed25519_key')).toBe('exclude');
    expect(ex.decide('/var/lib')).toBe('exclude');
    expect(ex.decide('/usr/lib/libc.so.6')).toBe('include');
    expect(ex.decide('/etc/ssh/sshd_config')).toBe('include');
    expect((await loadExclusions({ noDefaults: true })).rules).toEqual([]);
  });

  describe('per container file and the walk', () => {
    let dir: string;
    let rootfs: string;
    beforeAll(async () => {
      dir = await tempDir('ferry-unify-excl-');
      rootfs = join(dir, 'rootfs');
      const files = ['usr/bin/a', 'usr/bin/b', 'etc/passwd', 'etc/keep.conf', 'proc/x', 'var/lib/dpkg/status', 'var/lib/misc/x', 'data/skipme/inner', 'data/plain'];
      for (const f of files) {
        await mkdir(join(rootfs, f, '..'), { recursive: true });
        await writeFile(join(rootfs, f), `content of ${f}\n`);
      }
      await writeFile(join(rootfs, 'empty'), '');
      // Before the defaults: include one state file again, skip a tree, include under a skipped tree (in vain).
      await writeFile(join(dir, 'unify.exclude'), '# mine\n+/var/lib/dpkg/status\n~/data/skipme\n+/data/skipme/inner\n');
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it("the container's unify.exclude comes first, then the caller's lines, then the defaults", async () => {
      const ex = await loadExclusions({ containerDir: dir, lines: ['-/etc/keep.conf'] });
      expect(ex.rules[0]!.source).toBe(`${dir}/unify.exclude:2`);
      expect(ex.decide('/var/lib/dpkg/status', 'exclude')).toBe('include');
      expect(ex.match('/etc/keep.conf')?.source).toBe('options:1');
    });

    it('the walk applies the rules: skipped trees are not entered, excluded files are counted', async () => {
      const ex = await loadExclusions({ containerDir: dir, lines: ['-/etc/keep.conf'] });
      const r = await scanRootfs(0, rootfs, ex, { minSize: 1 });
      const included = r.files.filter((f) => !f.excluded).map((f) => f.path).sort();
      expect(included).toEqual(['/data/plain', '/usr/bin/a', '/usr/bin/b', '/var/lib/dpkg/status']);
      // examined: every regular file not skipped: usr/bin/a, b, etc/passwd, keep.conf, var/lib x2, data/plain, empty.
      expect(r.examined).toBe(8);
      expect(r.excluded).toBe(3);
    });
  });
});
