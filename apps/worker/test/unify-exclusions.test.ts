import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_EXCLUDES, Exclusions, loadExclusions, parseRules, RULE_LIMITS } from '../src/unify/exclusions.js';
import { compileGlob } from '@ferry/core';
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
    const m = (p: string, s: string) => compileGlob(p).test(s);
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

  it('matches without backtracking: a hostile pattern against a long path is simply false', () => {
    const hostile = compileGlob('*a*a*a*a*a*a*a*a*b');
    expect(hostile.test('a'.repeat(10_000))).toBe(false);
    expect(hostile.test(`${'a'.repeat(10_000)}b`)).toBe(true);
    const long = compileGlob(`*${'a'.repeat(RULE_LIMITS.patternLength - 2)}b*`);
    expect(long.test('a'.repeat(4096))).toBe(false);
    expect(compileGlob('*[[:alnum:]]*[!/]*?b').test('/x'.repeat(5000))).toBe(false);
  });

  it('wildcards and anchoring: * and ? match any character, / included; the whole path must match', () => {
    const m = (p: string, s: string) => compileGlob(p).test(s);
    expect(m('*', '')).toBe(true);
    expect(m('*', '/a/b/c')).toBe(true);
    expect(m('', '')).toBe(true);
    expect(m('', '/')).toBe(false);
    expect(m('/a?c', '/a/c')).toBe(true);
    expect(m('/a**b', '/a/x/y/b')).toBe(true);
    expect(m('/a*b*c', '/abbbc')).toBe(true);
    expect(m('/a*b*c', '/abbbcd')).toBe(false);
    expect(m('/etc', '/etc/x')).toBe(false);
    expect(m('etc', '/etc')).toBe(false);
    expect(m('*.key', '/a.key')).toBe(true);
    expect(m('*.key', '/a.key.bak')).toBe(false);
    expect(m('.*', '.profile')).toBe(true);
    expect(m('?', '\n')).toBe(true);
    expect(m('/A', '/a')).toBe(false);
  });

  it('bracket expressions: ranges, negation with ! or ^, ] and - as members, POSIX classes', () => {
    const m = (p: string, s: string) => compileGlob(p).test(s);
    expect(['a', 'm', 'z', 'A', '0'].filter((c) => m('[a-z]', c))).toEqual(['a', 'm', 'z']);
    expect(['a', 'b', 'x', '5', '-'].filter((c) => m('[a-b0-9x]', c))).toEqual(['a', 'b', 'x', '5']);
    expect(['a', 'b', '/'].filter((c) => m('[!a]', c))).toEqual(['b', '/']);
    expect(['a', 'b', '/'].filter((c) => m('[^a]', c))).toEqual(['b', '/']);
    expect(['a', ']', 'b'].filter((c) => m('[]a]', c))).toEqual(['a', ']']);
    expect(['a', ']', 'b'].filter((c) => m('[!]a]', c))).toEqual(['b']);
    expect(['a', '-', 'b'].filter((c) => m('[a-]', c))).toEqual(['a', '-']);
    expect(['a', '-', 'b'].filter((c) => m('[-a]', c))).toEqual(['a', '-']);
    expect(['a', '-', 'q', '9', '8'].filter((c) => m('[a-z-9]', c))).toEqual(['a', '-', 'q', '9']);
    expect(['!', 'a'].filter((c) => m('[a!]', c))).toEqual(['!', 'a']);
    expect(m('[[]', '[')).toBe(true);
    const cls = (name: string) => [...'aZ09 \t\n!/_~`@{\x7f\x00F'].filter((c) => m(`[[:${name}:]]`, c)).join('');
    expect(cls('alpha')).toBe('aZF');
    expect(cls('digit')).toBe('09');
    expect(cls('alnum')).toBe('aZ09F');
    expect(cls('space')).toBe(' \t\n');
    expect(cls('blank')).toBe(' \t');
    expect(cls('upper')).toBe('ZF');
    expect(cls('lower')).toBe('a');
    expect(cls('punct')).toBe('!/_~`@{');
    expect(cls('xdigit')).toBe('a09F');
    expect(cls('cntrl')).toBe('\t\n\x7f\x00');
    expect(cls('graph')).toBe('aZ09!/_~`@{F');
    expect(cls('print')).toBe('aZ09 !/_~`@{F');
    expect(m('[![:digit:]]', '5')).toBe(false);
    expect(m('[^[:digit:]]', 'x')).toBe(true);
    expect(m('[[:digit:][:upper:]_]', '_')).toBe(true);
    expect(m('[[:digit:]x]', 'x')).toBe(true);
    // An unknown class name is no class: its characters are members.
    expect(m('[[:nope:]]', 'n:]')).toBe(false);
    expect(m('[[:nope:]', 'o')).toBe(true);
    expect(m('[[:constructor:]]', 'c')).toBe(false);
    // Not closed: a literal [.
    expect(m('/[a-z', '/[a-z')).toBe(true);
    expect(m('/[a-z', '/b')).toBe(false);
    expect(m('[!', '[!')).toBe(true);
  });

  it('backslash escapes: outside and inside brackets; a trailing \\ is itself', () => {
    const m = (p: string, s: string) => compileGlob(p).test(s);
    expect(m('\\?', '?')).toBe(true);
    expect(m('\\?', 'x')).toBe(false);
    expect(m('\\[a]', '[a]')).toBe(true);
    expect(m('\\[a]', 'a')).toBe(false);
    expect(m('\\\\', '\\')).toBe(true);
    expect(m('\\a', 'a')).toBe(true);
    expect(m('a\\', 'a\\')).toBe(true);
    expect(m('[\\]]', ']')).toBe(true);
    expect(m('[\\!a]', '!')).toBe(true);
    expect(m('[a\\-z]', '-')).toBe(true);
    expect(m('[a\\-z]', 'm')).toBe(false);
    expect(m('[\\a-\\c]', 'b')).toBe(true);
    expect(m('[x\\', '[x\\')).toBe(true);
  });

  it('refuses a range out of order, naming the rule', () => {
    expect(() => parseRules('-/ok\n-/v[z-a]\n', 'list')).toThrow(
      expect.objectContaining({ code: 'UNIFY_BAD_EXCLUDE', message: expect.stringContaining('list:2') }),
    );
  });

  it('refuses lists over RULE_LIMITS (pattern length, rules per list), naming the rule and its list', async () => {
    const max = `/${'x'.repeat(RULE_LIMITS.patternLength - 1)}`;
    expect(parseRules(`-${max}`, 'list')).toHaveLength(1);
    expect(() => parseRules(`# a comment\n-${max}x\n`, 'list')).toThrow(
      expect.objectContaining({ code: 'UNIFY_BAD_EXCLUDE', message: expect.stringContaining('list:2'), details: expect.objectContaining({ rule: 'list:2' }) }),
    );
    const many = (n: number) => Array.from({ length: n }, (_, i) => `-/f${i}`);
    expect(parseRules(['# comments do not count', ...many(RULE_LIMITS.rulesPerSource)].join('\n'), 'list')).toHaveLength(RULE_LIMITS.rulesPerSource);
    expect(() => parseRules(many(RULE_LIMITS.rulesPerSource + 1).join('\n'), 'list')).toThrow(
      expect.objectContaining({ code: 'UNIFY_BAD_EXCLUDE', message: expect.stringContaining(`list:${RULE_LIMITS.rulesPerSource + 1}`) }),
    );
    await expect(loadExclusions({ lines: ['-/a', `+${max}x`] })).rejects.toMatchObject({ code: 'UNIFY_BAD_EXCLUDE', message: expect.stringContaining('options:2') });
    await expect(loadExclusions({ lines: many(RULE_LIMITS.rulesPerSource + 1) })).rejects.toMatchObject({ code: 'UNIFY_BAD_EXCLUDE' });
    const dir = await tempDir('ferry-unify-limits-');
    try {
      await writeFile(join(dir, 'unify.exclude'), `-/a\n\n*${'a*'.repeat(RULE_LIMITS.patternLength)}b\n`);
      await expect(loadExclusions({ containerDir: dir })).rejects.toMatchObject({ code: 'UNIFY_BAD_EXCLUDE', message: expect.stringContaining(`${dir}/unify.exclude:3`) });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
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

  it('default rules name their line of DEFAULT_EXCLUDES', async () => {
    const lines = DEFAULT_EXCLUDES.split('\n');
    for (const r of (await loadExclusions({})).rules) {
      const n = Number(/^defaults:(\d+)$/.exec(r.source)?.[1]);
      expect(lines[n - 1]!.slice(1)).toBe(r.pattern);
    }
  });

  it('no + rule of a container or a caller includes a secret or anything below one; only noDefaults leaves them out', async () => {
    const dir = await tempDir('ferry-unify-secrets-');
    try {
      const mine = '+/etc/shadow\n+/etc/ssl/private/*\n+/etc/ssl/private\n+/etc/ssh/*\n+*.pem\n~/etc/hostname\n+*\n';
      await writeFile(join(dir, 'unify.exclude'), mine);
      const lines = ['+/etc/shadow', '+/etc/ssl/*', '+/etc/passwd', '+*'];
      for (const ex of [await loadExclusions({ containerDir: dir }), await loadExclusions({ lines }), await loadExclusions({ containerDir: dir, lines })]) {
        for (const secret of ['/etc/shadow', '/etc/shadow-', '/etc/passwd', '/etc/ssl/private', '/etc/ssl/private/site', '/etc/ssl/private/a/b', '/etc/ssh/ssh_host_rsa_key', '/srv/tls/site.pem', '/etc/hostname']) {
          expect([secret, ex.decide(secret, 'include')]).toEqual([secret, 'exclude']);
          expect(ex.match(secret)?.source).toMatch(/^defaults:\d+$/);
        }
        // The same rules still include what is no secret.
        expect(ex.decide('/etc/ssl/certs/ca.crt', 'exclude')).toBe('include');
        expect(ex.decide('/etc/ssh/sshd_config', 'exclude')).toBe('include');
      }
      // Only the explicit option takes the secrets out.
      const bare = await loadExclusions({ containerDir: dir, noDefaults: true });
      expect(bare.decide('/etc/shadow', 'exclude')).toBe('include');
      expect(bare.decide('/etc/ssl/private/site', 'exclude')).toBe('include');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
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
      // Before the general defaults: include one state file again, skip a tree, include under a
      // skipped tree (in vain), include a secret (in vain: the secret rules come first).
      await writeFile(join(dir, 'unify.exclude'), '# mine\n+/var/lib/dpkg/status\n~/data/skipme\n+/data/skipme/inner\n+/etc/passwd\n');
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it("the secret defaults come first, then the container's unify.exclude, then the caller's lines, then the other defaults", async () => {
      const ex = await loadExclusions({ containerDir: dir, lines: ['-/etc/keep.conf'] });
      const sources = ex.rules.map((r) => r.source.replace(/:\d+$/, ''));
      const from = (s: string) => sources.indexOf(s);
      const secrets = sources.findIndex((s, i) => s === 'defaults' && sources[i + 1] !== 'defaults');
      expect(ex.rules[0]!.pattern).toBe('/etc/ssh/*key*');
      expect(from(`${dir}/unify.exclude`)).toBe(secrets + 1);
      expect(from('options')).toBe(secrets + 1 + 4);
      expect(sources.slice(from('options') + 1).every((s) => s === 'defaults')).toBe(true);
      expect(ex.rules[from('options') + 1]!.pattern).toBe('/proc');
      expect(ex.match('/etc/passwd')?.source).toMatch(/^defaults:/);
      expect(ex.decide('/var/lib/dpkg/status', 'exclude')).toBe('include');
      expect(ex.match('/etc/keep.conf')?.source).toBe('options:1');
    });

    it('the walk applies the rules: skipped trees are not entered, excluded files are counted', async () => {
      const ex = await loadExclusions({ containerDir: dir, lines: ['-/etc/keep.conf'] });
      const r = await scanRootfs(0, rootfs, ex, { minSize: 1 });
      const included = r.files.filter((f) => !f.excluded).map((f) => f.path).sort();
      expect(included).toEqual(['/data/plain', '/usr/bin/a', '/usr/bin/b', '/var/lib/dpkg/status']);
      // examined: every regular file not skipped: usr/bin/a, b, etc/passwd, keep.conf, var/lib x2, data/plain, empty.
      // etc/passwd stays excluded although the container's file includes it.
      expect(r.examined).toBe(8);
      expect(r.excluded).toBe(3);
    });
  });
});
