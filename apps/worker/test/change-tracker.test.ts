import { chmod, chown, link, mkdir, rename, rm, symlink, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { run } from '@ferry/infra';
import { diffManifests, manifest } from '../src/manifest/manifest.js';
import { rsyncLocal } from '../src/transfer/rsync.js';
import { SINCE_MARGIN_S } from '../src/transfer/change-tracker.js';
import { PassTracker, type PassPlan } from '../src/transfer/tracked-pass.js';
import { buildTree, tempDir } from './helpers.js';

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

const OLD = new Date('2020-01-01T00:00:00Z');

/**
 * The change tracker against a tree changed in every way a file can change, each change made so
 * that size and mtime say nothing (mtimes put back): a pass after it must leave the copy equal to
 * the source, content, metadata and structure, having sent only what changed.
 */
describe('tracked passes: every kind of change reaches the copy', () => {
  let base: string;
  let src: string;
  let dst: string;
  let quick: string;
  let tracker: PassTracker;
  const send = (plan: PassPlan) =>
    rsyncLocal({ source: src, dest: dst, ...(plan.filesFrom ? { filesFrom: plan.filesFrom } : {}), checksum: plan.checksum, partialDir: join(base, 'partial') });

  beforeAll(async () => {
    base = await tempDir('ferry-track-');
    src = join(base, 'src');
    dst = join(base, 'dst');
    quick = join(base, 'quick');
    await mkdir(src);
    await buildTree(src);
    // Bulk that never changes: a tracked pass must not send or even list it.
    for (let d = 0; d < 20; d++) {
      await mkdir(join(src, `bulk/d${d}`), { recursive: true });
      for (let f = 0; f < 100; f++) await writeFile(join(src, `bulk/d${d}/f${f}`), `${d}-${f}`);
    }
    await mkdir(join(src, 'srv/tree/deep'), { recursive: true });
    await writeFile(join(src, 'srv/same'), 'A'.repeat(4096));
    await writeFile(join(src, 'srv/tree/deep/x'), 'deep');
    await writeFile(join(src, 'srv/hole'), Buffer.alloc(64 * 1024, 7));
    for (const f of ['srv/same', 'srv/hole']) await utimes(join(src, f), OLD, OLD);
    await mkdir(join(base, 'outside/sub'), { recursive: true });
    await writeFile(join(base, 'outside/sub/old'), 'moved in with an old ctime');
    // Let every ctime of the setup fall before the first pass's stamp, margin included.
    await sleep(SINCE_MARGIN_S * 1000 + 100);
    tracker = new PassTracker(join(base, 'scratch'), src, []);
  });
  afterAll(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it('a full pass, then one pass of exactly what changed, content compared', async () => {
    const first = await tracker.pass(send);
    expect(first.changed).toBeUndefined();
    expect(diffManifests(await manifest(src), await manifest(dst))).toEqual([]);
    // A second copy kept by plain quick-check rsync, the way every pass used to run.
    await rsyncLocal({ source: src, dest: quick });

    const changes: Array<[string, () => Promise<unknown>]> = [
      ['content, same size, mtime put back', async () => {
        await writeFile(join(src, 'srv/same'), 'B'.repeat(4096));
        await utimes(join(src, 'srv/same'), OLD, OLD);
      }],
      ['hole punched, mtime put back', async () => {
        await run('fallocate', ['-p', '-o', '4096', '-l', '8192', join(src, 'srv/hole')]);
        await utimes(join(src, 'srv/hole'), OLD, OLD);
      }],
      ['chmod', () => chmod(join(src, 'suid'), 0o755)],
      ['chown', () => chown(join(src, 'owned'), 1111, 2222)],
      ['xattr', () => run('setfattr', ['-n', 'user.added', '-v', 'x', join(src, 'random')])],
      ['ACL', () => run('setfacl', ['-m', 'u:4321:r', join(src, 'name with space')])],
      ['hard link added', () => link(join(src, 'random'), join(src, 'empty/random-link'))],
      ['hard link removed', () => unlink(join(src, 'third-link'))],
      ['file renamed', () => rename(join(src, 'back\\slash'), join(src, 'a/moved\\slash'))],
      ['dir renamed (its entries keep old ctimes)', () => rename(join(src, 'srv/tree'), join(src, 'srv/tree2'))],
      ['dir moved in from outside the tree', () => rename(join(base, 'outside/sub'), join(src, 'srv/came-in'))],
      ['deleted', () => unlink(join(src, 'dangling'))],
      ['file → dir', async () => {
        await unlink(join(src, 'name with space'));
        await mkdir(join(src, 'name with space'));
        await writeFile(join(src, 'name with space/inner'), 'i');
      }],
      ['dir → symlink', async () => {
        await rm(join(src, 'a/b'), { recursive: true });
        await symlink('../empty', join(src, 'a/b'));
      }],
      ['symlink → file', async () => {
        await unlink(join(src, 'a/f1'));
        await writeFile(join(src, 'a/f1'), 'was a link target, now a file');
      }],
      ['newline name, content same size', () => writeFile(join(src, 'new\nline'), '9')],
      ['non-UTF-8 name, content same size', () => writeFile(Buffer.concat([Buffer.from(`${src}/bad-`), Buffer.from([0xff, 0xfe])]), '5')],
      ['dir named like rsync\'s partial dir', () => writeFile(join(src, '.ferry-partial/new'), 'kept')],
    ];
    for (const [, change] of changes) await change();

    const second = await tracker.pass(send);
    const d = diffManifests(await manifest(src), await manifest(dst));
    expect(d, JSON.stringify(d, null, 1)).toEqual([]);
    // Proportional: the 2,000 bulk files were neither listed nor walked into rsync's list.
    expect(second.changed).toBeDefined();
    expect(second.changed!.files).toBeLessThan(60);

    // What quick check alone would have missed (this is the loss the tracker closes).
    await rsyncLocal({ source: src, dest: quick });
    const missed = diffManifests(await manifest(src), await manifest(quick), 1000);
    expect(missed.some((l) => l.includes('srv/same'))).toBe(true);
    expect(missed.some((l) => l.includes('srv/hole'))).toBe(true);

    // Nothing changed since: the next pass sends nothing (it may list again what changed within
    // the clock margin before the previous pass began).
    const third = await tracker.pass(send);
    expect(third.changed!.files).toBeLessThanOrEqual(second.changed!.files);
    expect(third.filesChanged).toBe(0);
    await sleep(SINCE_MARGIN_S * 1000 + 100);
    const fourth = await tracker.pass(send);
    expect(fourth.changed).toMatchObject({ files: 0, dirs: 0, trees: 0 });
  });

  it('a full pass at rest, with no earlier pass to compare with, compares content', async () => {
    const fresh = new PassTracker(join(base, 'scratch-2'), src, []);
    const plans: PassPlan[] = [];
    await fresh.pass(async (p) => {
      plans.push(p);
      return send(p);
    }, { atRest: true });
    expect(plans).toEqual([{ checksum: true }]);
  });
});
