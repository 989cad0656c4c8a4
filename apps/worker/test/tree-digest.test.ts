import { chmod, link, mkdir, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '@ferry/infra';
import { digestOf, metadataBytes, metadataLines, treemetaBinary } from '../src/verify/tree-digest.js';
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
    expect(digestOf(fast, [])).toBe(digestOf(await metadataLines(root), []));
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
