import { chmod, chown, link, mkdir, readlink, rename, rm, symlink, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { run } from '@ferry/infra';
import { diffManifests, manifest } from '../src/manifest/manifest.js';
import { rsyncLocal } from '../src/transfer/rsync.js';
import { SINCE_MARGIN_S } from '../src/transfer/change-tracker.js';
import { PassTracker, type PassPlan } from '../src/transfer/tracked-pass.js';
import { fswatchBinary } from '../src/transfer/fs-watch.js';
import { buildTree, tempDir } from './helpers.js';

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

const OLD = new Date('2020-01-01T00:00:00Z');

/**
 * The change tracker against a tree changed in every way a file can change, each change made so
 * that size and mtime say nothing (mtimes put back): a pass after it must leave the copy equal to
 * the source, content, metadata and structure, having sent only what changed.
 */
// Both ways of knowing what changed: the watcher (fanotify, where the helper was built and the
// kernel allows it) and the ctime walk.
const watcher = fswatchBinary();
if (!watcher) console.log('change watcher not built (no ferry-fswatch): its tracked-pass tests are skipped; run scripts/setup.sh');
describe.each([
  ['watch', !watcher],
  ['walk', false],
] as const)('tracked passes (%s): every kind of change reaches the copy', (by, skip) => {
  let base: string;
  let src: string;
  let dst: string;
  let quick: string;
  let tracker: PassTracker;
  const send = (plan: PassPlan) =>
    rsyncLocal({ source: src, dest: dst, ...(plan.filesFrom ? { filesFrom: plan.filesFrom } : {}), checksum: plan.checksum, partialDir: join(base, 'partial') });

  const env = process.env.FERRY_CHANGE_TRACKER;
  beforeAll(async () => {
    if (skip) return;
    process.env.FERRY_CHANGE_TRACKER = by;
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
    await mkdir(join(base, 'host-secrets'));
    await writeFile(join(base, 'host-secrets/x'), 'a file of the host, never to be copied');
    await mkdir(join(src, 'srv/esc'));
    await writeFile(join(src, 'srv/esc/x'), 'mine');
    // Let every ctime of the setup fall before the first pass's stamp, margin included.
    await sleep(SINCE_MARGIN_S * 1000 + 100);
    tracker = new PassTracker(join(base, 'scratch'), src, []);
  });
  afterAll(async () => {
    if (env === undefined) delete process.env.FERRY_CHANGE_TRACKER;
    else process.env.FERRY_CHANGE_TRACKER = env;
    if (base) await rm(base, { recursive: true, force: true });
  });

  it.skipIf(skip)('a full pass, then one pass of exactly what changed, content compared', async () => {
    const first = await tracker.pass(send);
    expect(first.changed).toBeUndefined();
    expect(diffManifests(await manifest(src), await manifest(dst))).toEqual([]);
    // A second copy kept by plain quick-check rsync, the way every pass used to run.
    await rsyncLocal({ source: src, dest: quick });

    // Round 1: every change but those of hard-linked files.
    const round1: Array<[string, () => Promise<unknown>]> = [
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
      ['file renamed', () => rename(join(src, 'back\\slash'), join(src, 'a/moved\\slash'))],
      ['dir renamed (its entries keep old ctimes)', () => rename(join(src, 'srv/tree'), join(src, 'srv/tree2'))],
      ['dir moved in from outside the tree', () => rename(join(base, 'outside/sub'), join(src, 'srv/came-in'))],
      ['deleted', () => unlink(join(src, 'dangling'))],
      ['file → dir', async () => {
        await unlink(join(src, 'name with space'));
        await mkdir(join(src, 'name with space'));
        await writeFile(join(src, 'name with space/inner'), 'i');
      }],
      ['newline name, content same size', () => writeFile(join(src, 'new\nline'), '9')],
      ['non-UTF-8 name, content same size', () => writeFile(Buffer.concat([Buffer.from(`${src}/bad-`), Buffer.from([0xff, 0xfe])]), '5')],
      ["dir named like rsync's partial dir", () => writeFile(join(src, '.ferry-partial/new'), 'kept')],
      // A file changed in a dir, then the dir swapped for a symlink out of the tree: the pass must
      // send the symlink, never follow it (the listed srv/esc/x would reach the host's file).
      ['dir → symlink out of the tree, after a change in it', async () => {
        await writeFile(join(src, 'srv/esc/x'), 'MINE');
        await rm(join(src, 'srv/esc'), { recursive: true });
        await symlink(join(base, 'host-secrets'), join(src, 'srv/esc'));
      }],
    ];
    // Round 2: hard links. rsync keeps a link only when every path of the inode is listed, which
    // only the walk can find: the watcher hands over to it.
    const round2: Array<[string, () => Promise<unknown>]> = [
      ['hard link added', () => link(join(src, 'random'), join(src, 'empty/random-link'))],
      ['hard link removed', () => unlink(join(src, 'third-link'))],
      ['dir → symlink (it held a hard link)', async () => {
        await rm(join(src, 'a/b'), { recursive: true });
        await symlink('../empty', join(src, 'a/b'));
      }],
      ['symlink → file', async () => {
        await unlink(join(src, 'a/f1'));
        await writeFile(join(src, 'a/f1'), 'was a link target, now a file');
      }],
    ];
    for (const [, change] of round1) await change();
    const second = await tracker.pass(send);
    const d = diffManifests(await manifest(src), await manifest(dst));
    expect(d, JSON.stringify(d, null, 1)).toEqual([]);
    // Proportional: the 2,000 bulk files were neither listed nor walked into rsync's list.
    expect(second.changed).toMatchObject({ by });
    expect(second.changed!.files).toBeLessThan(60);
    expect(await readlink(join(dst, 'srv/esc'))).toBe(join(base, 'host-secrets'));

    for (const [, change] of round2) await change();
    const linked = await tracker.pass(send);
    const d2 = diffManifests(await manifest(src), await manifest(dst));
    expect(d2, JSON.stringify(d2, null, 1)).toEqual([]);
    expect(linked.changed).toMatchObject({ by: 'walk' });

    // What quick check alone would have missed (this is the loss the tracker closes).
    await rsyncLocal({ source: src, dest: quick });
    const missed = diffManifests(await manifest(src), await manifest(quick), 1000);
    expect(missed.some((l) => l.includes('srv/same'))).toBe(true);
    expect(missed.some((l) => l.includes('srv/hole'))).toBe(true);

    // Nothing changed since: the next pass sends nothing (it may list again what changed within
    // the clock margin before the previous pass began).
    const third = await tracker.pass(send);
    expect(third.filesChanged).toBe(0);
    await sleep(SINCE_MARGIN_S * 1000 + 100);
    const fourth = await tracker.pass(send);
    expect(fourth.changed).toMatchObject({ files: 0, dirs: 0, trees: 0 });
  });

  it.skipIf(skip)('a full pass at rest, with no earlier pass to compare with, compares content', async () => {
    const fresh = new PassTracker(join(base, 'scratch-2'), src, []);
    const plans: PassPlan[] = [];
    await fresh.pass(async (p) => {
      plans.push(p);
      return send(p);
    }, { atRest: true });
    expect(plans).toEqual([{ checksum: true }]);
  });
});
