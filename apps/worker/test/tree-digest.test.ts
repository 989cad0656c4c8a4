import { chmod, chown, link, mkdir, readFile, rename, rm, symlink, truncate, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { run } from '@ferry/infra';
import { metadataBytes, metadataIndex, metadataLines, metadataPatch, metadataSum, sumOfLines, treemetaBinary } from '../src/verify/tree-digest.js';
import { tempDir } from './helpers.js';

/**
 * The default verification's metadata digest has two implementations, the C helper (fast) and
 * find + JavaScript (the fallback where the helper was not built). A source and a target may use
 * different ones: they must give the same bytes on any tree.
 */
const helper = treemetaBinary();
if (!helper) console.log('ferry-treemeta not built: the comparison of its output with the fallback is skipped; run scripts/setup.sh');

describe.skipIf(!helper)('metadata digest: the C helper and the fallback agree byte for byte', () => {
  let root: string;
  beforeAll(async () => {
    root = await tempDir('ferry-treemeta-');
    const b = (s: string) => Buffer.from(s, 'latin1');
    await mkdir(join(root, 'd/e/f'), { recursive: true });
    await writeFile(join(root, 'plain'), 'x');
    await writeFile(Buffer.concat([b(`${root}/`), Buffer.from([0x6e, 0xe9, 0xff, 0x80])]), 'not UTF-8'); // a name that is not UTF-8
    await writeFile(join(root, 'new\nline and space'), 'y');
    await writeFile(join(root, 'd/one'), 'linked');
    await link(join(root, 'd/one'), join(root, 'd/e/two'));
    await link(join(root, 'd/one'), join(root, 'a-first'));
    await writeFile(join(root, 'single'), 'z');
    await symlink('../plain', join(root, 'd/up'));
    await symlink('/nonexistent/target', join(root, 'dangling'));
    await run('mkfifo', [join(root, 'fifo')]);
    await run('mknod', [join(root, 'null-dev'), 'c', '1', '3']);
    await run('truncate', ['-s', '1G', join(root, 'sparse')]);
    await chmod(join(root, 'single'), 0o4751);
    await chmod(join(root, 'd/e'), 0o1777);
    await utimes(join(root, 'plain'), new Date('2020-01-01T00:00:00.123Z'), new Date('2020-01-01T00:00:00.987Z'));
    await utimes(join(root, 'single'), 5, 5); // whole seconds
  });
  afterAll(async () => {
    if (root) await run('rm', ['-rf', root]);
  });

  it('same bytes, so the same digest; every kind of entry and a three-name hard link group are in it', async () => {
    const fast = await metadataBytes(root);
    process.env.FERRY_TREEMETA = 'none';
    let slow: Buffer;
    try {
      slow = await metadataBytes(root);
    } finally {
      delete process.env.FERRY_TREEMETA;
    }
    expect(fast.toString('hex')).toBe(slow.toString('hex'));
    // The sum the digest is made of: the same from the helper and from the lines.
    const lines = await metadataLines(root);
    expect(await metadataSum(root)).toBe(sumOfLines(lines));
    expect(sumOfLines(lines)).not.toBe(sumOfLines(lines.slice(1)));
    const text = fast.toString('utf8');
    for (const t of ['f', 'd', 'l', 'p', 'c']) expect(text).toMatch(new RegExp(`\\0${t} `));
    expect(text.match(/\0a-first\n/g)).toHaveLength(3); // one, two and a-first all name the smallest path
  });

  it.skipIf(process.getuid?.() !== 0)('a walk that cannot read a directory fails (as find does) instead of leaving it out', async () => {
    // As an unprivileged user, a directory of mode 000 below a readable root cannot be read.
    const top = await tempDir('ferry-treemeta-locked-');
    try {
      await chmod(top, 0o755);
      await mkdir(join(top, 'locked/inner'), { recursive: true });
      await chmod(join(top, 'locked'), 0o000);
      const asNobody = ['--reuid=65534', '--regid=65534', '--clear-groups'];
      await expect(run('setpriv', [...asNobody, helper!, top])).rejects.toMatchObject({ failure: { exitCode: 1 } });
      await expect(run('setpriv', [...asNobody, 'find', top, '-printf', '%P\\n'])).rejects.toMatchObject({ failure: { exitCode: 1 } });
    } finally {
      await run('rm', ['-rf', top]);
    }
  });
});

/**
 * The frozen window's metadata digest is an index taken while the container ran, brought up to
 * date with the final pass's list. For every way an entry can change, with the list a tracked
 * pass would send, the patched sum must equal a fresh walk's, and refuse (null) where it cannot
 * vouch. Run as root: chown needs it.
 */
describe.skipIf(!helper || process.getuid?.() !== 0)('metadata index patched with a pass list equals a fresh walk', () => {
  let root: string;
  let index: string;
  const p = (rel: string) => join(root, rel);
  beforeEach(async () => {
    const top = await tempDir('ferry-meta-index-');
    root = join(top, 'rootfs');
    index = join(top, 'meta-index');
    await mkdir(p('etc/conf.d'), { recursive: true });
    await mkdir(p('srv/deep/er/est'), { recursive: true });
    await mkdir(p('var/log'), { recursive: true });
    await writeFile(p('etc/hosts'), '127.0.0.1 localhost\n');
    await writeFile(p('etc/conf.d/a'), 'a');
    await writeFile(p('srv/same'), 'x'.repeat(4096));
    await writeFile(p('srv/deep/er/est/leaf'), 'leaf');
    await writeFile(p('var/log/messages'), 'log');
    await symlink('hosts', p('etc/hosts.link'));
    await utimes(p('srv/same'), new Date('2020-01-01T00:00:00Z'), new Date('2020-01-01T00:00:00Z'));
    expect(await metadataIndex(root, index)).toBe(await metadataSum(root));
  });
  afterEach(async () => {
    await rm(join(root, '..'), { recursive: true, force: true });
  });

  const cases: Array<[string, () => Promise<unknown>, string[]]> = [
    ['content rewritten, same size, mtime put back', async () => {
      await writeFile(p('srv/same'), 'y'.repeat(4096));
      await utimes(p('srv/same'), new Date('2020-01-01T00:00:00Z'), new Date('2020-01-01T00:00:00Z'));
    }, ['srv/same']],
    ['chmod', () => chmod(p('etc/hosts'), 0o600), ['etc/hosts']],
    ['chown', () => chown(p('etc/hosts'), 1234, 5678), ['etc/hosts']],
    ['size change', () => truncate(p('var/log/messages'), 1 << 20), ['var/log/messages']],
    ['file deleted', () => unlink(p('etc/conf.d/a')), ['etc/conf.d/.']],
    ['file renamed', () => rename(p('etc/conf.d/a'), p('var/log/a')), ['etc/conf.d/.', 'var/log/.']],
    ['directory tree deleted', () => rm(p('srv/deep'), { recursive: true }), ['srv/.']],
    ['directory tree renamed', () => rename(p('srv/deep'), p('var/deep')), ['srv/.', 'var/.', 'var/deep/.', 'var/deep/er/.', 'var/deep/er/est/.']],
    ['file becomes a directory', async () => {
      await unlink(p('srv/same'));
      await mkdir(p('srv/same'));
      await writeFile(p('srv/same/inner'), 'i');
    }, ['srv/.', 'srv/same/.']],
    ['directory becomes a symlink', async () => {
      await rm(p('srv/deep'), { recursive: true });
      await symlink('/etc', p('srv/deep'));
    }, ['srv/.']],
    ['symlink retargeted', async () => {
      await unlink(p('etc/hosts.link'));
      await symlink('elsewhere', p('etc/hosts.link'));
    }, ['etc/.']],
    ['new entry at the top, root touched', async () => {
      await writeFile(p('new-top'), 'n');
      await chmod(root, 0o700);
    }, ['.']],
    ['sparse hole punched', async () => {
      await writeFile(p('var/log/messages'), Buffer.alloc(1 << 16, 1));
      await run('fallocate', ['--punch-hole', '--offset', '0', '--length', '4096', p('var/log/messages')]);
    }, ['var/log/messages']],
  ];
  for (const [what, change, list] of cases) {
    it(what, async () => {
      await change();
      expect(await metadataPatch(root, index, list)).toEqual({ sum: await metadataSum(root) });
    });
  }

  it('a change left out of the list shows as a different sum (what the target would then disagree on)', async () => {
    await chmod(p('etc/hosts'), 0o600);
    await writeFile(p('new-top'), 'n');
    expect(await metadataPatch(root, index, ['.'])).not.toEqual({ sum: await metadataSum(root) });
  });

  it('refuses to vouch where names of one inode are touched, or for another directory', async () => {
    await link(p('etc/hosts'), p('etc/hosts.hard'));
    expect(await metadataPatch(root, index, ['etc/.'])).toEqual({ refused: expect.stringMatching(/^an entry with more than one link: etc\/hosts(\.hard)?$/) });
    const other = join(root, '..', 'other');
    await mkdir(other);
    expect(await metadataPatch(other, index, [])).toEqual({ refused: 'the root is not the directory the snapshot was taken of' });
    expect(await metadataPatch(root, join(root, '..', 'no-index'), [])).toEqual({ refused: 'no index' });
  });

  it('refuses an index of the older format (a worker upgraded mid-migration: the caller walks); a damaged one is an error', async () => {
    const bytes = await readFile(index);
    const older = Buffer.from(bytes);
    older.write('FTMSNAP1', 0, 'latin1');
    await writeFile(index, older);
    expect(await metadataPatch(root, index, ['etc/hosts'])).toEqual({ refused: `the snapshot is of another format: ${index}` });
    // Cut inside its offset table: an offset then points past the entries.
    await writeFile(index, bytes.subarray(0, bytes.length - 3));
    await expect(metadataPatch(root, index, ['etc/hosts'])).rejects.toThrow(/is not a snapshot/);
  });

  it('does not follow a symlink among the listed paths', async () => {
    await rm(p('srv/deep'), { recursive: true });
    await symlink('/etc', p('srv/deep'));
    // An entry through the symlink is not in the tree: it counts as absent, as a walk has it.
    expect(await metadataPatch(root, index, ['srv/.', 'srv/deep/passwd', 'srv/deep/.'])).toEqual({ sum: await metadataSum(root) });
  });
});
