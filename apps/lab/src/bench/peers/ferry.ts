/**
 * ferry's side of the peers benchmark, in ferry's lab (two hosts, a client, sshd with pinned
 * keys): the same content LXD moves (content.ts) becomes a lab container on h1 and is migrated to
 * h2 with ferry's defaults while the client probes it; and the floor: one plain cold
 * `rsync -aHAX --numeric-ids` of the same tree from h1 to h2 over the same kind of link.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hostExec, labContainerCreate, labContainerRemove, labDown, labInfo, labUp, type LabInfo } from '../../lab/index.js';
import { measureMigration } from '../../demo/measure.js';
import { coldRsync } from '../cold-rsync.js';
import { addData, WRITER_DIR, writeTree } from './content.js';
import { compare, describe, manifest } from './manifest.js';
import { emptyResult, type MoveResult } from './result.js';
import { CgroupWatcher } from './watch.js';

export class FerryPeer {
  private lab: LabInfo | null = null;
  private seq = 0;
  version = '';

  constructor(private readonly cfg: { work: string; sizeMiB: number; log: (l: string) => void }) {}

  async open(): Promise<void> {
    if (await labInfo()) throw new Error('a ferry lab is already up; remove it first with: ferry lab down');
    const pkg = JSON.parse(await readFile(new URL('../../../../cli/package.json', import.meta.url), 'utf8')) as { version: string };
    this.version = pkg.version;
    this.cfg.log('bringing up ferry\'s lab (2 hosts, a client)');
    this.lab = await labUp({ hosts: 2 });
  }

  /** The bench's tree plus this run's data, staged in the work dir. */
  private async stage(tag: string): Promise<string> {
    const dir = join(this.cfg.work, `ferry-${tag}`);
    await rm(dir, { recursive: true, force: true });
    await writeTree(this.cfg.work, dir, this.cfg.log);
    await addData(dir, this.cfg.sizeMiB);
    // The page the lab waits for names the container; written here, it is part of the reference.
    await mkdir(join(dir, 'srv/www'), { recursive: true });
    await writeFile(join(dir, 'srv/www/index.html'), `peers bench ${tag}\n`);
    return dir;
  }

  /** One `ferry migrate` (restart mode, default verification) of a running container from h1 to h2. */
  async measure(): Promise<MoveResult> {
    const lab = this.lab!;
    const name = `fp${++this.seq}`;
    const res = emptyResult('ferry');
    const stage = await this.stage(name);
    // The writer's files change on purpose while the container runs: left out, as for LXD.
    const before = await manifest(stage, [WRITER_DIR]);
    try {
      const ct = await labContainerCreate({ name, host: 'h1', image: stage });
      const watcher = new CgroupWatcher(name);
      await watcher.start();
      await new Promise((r) => setTimeout(r, 300));
      const m = await measureMigration(lab, { container: name, ip: ct.ip, from: 'h1', to: 'h2' });
      const c = await watcher.stop();
      res.ok = m.state === 'done' && m.answeredAfter;
      res.totalMs = m.totalMs;
      res.downtimeMs = m.answeredAfter ? m.downtimeMs : null;
      // The same observer as for LXD; ferry's own record of it where the cgroup was not seen.
      res.frozenMs = c.sawSource ? c.sourceFrozenMs : (m.frozenMs ?? null);
      res.bothRunningMs = c.bothRunningMs;
      res.bytesMoved = m.bytesTransferred;
      res.steps = m.steps.map((x) => ({ name: x.name, host: x.host, ms: x.ms }));
      if (m.state !== 'done') res.error = `operation ${m.state}: ${JSON.stringify(m.error ?? null)}`;
      else if (!m.answeredAfter) res.error = 'done, but the container does not answer on h2';
      res.after = await this.whereIs(name);
      if (m.state === 'done') {
        const h2 = lab.hosts[1]!;
        await hostExec('h2', ['lxc-stop', '-P', h2.lxcPath, '-n', name, '-k'], { timeoutMs: 30_000 });
        const after = await manifest(join(h2.lxcPath, name, 'rootfs'), [WRITER_DIR]);
        res.comparison = compare(before, after);
        res.identical = res.comparison.identical;
        res.differences = res.identical ? null : describe(res.comparison);
      }
    } catch (e) {
      res.error ??= (e as Error).message;
    } finally {
      await labContainerRemove(name).catch((e) => this.cfg.log(`removing ${name}: ${(e as Error).message}`));
      await rm(stage, { recursive: true, force: true });
    }
    return res;
  }

  /** The floor: one plain cold rsync of the same tree (stopped, nothing running) from h1 to h2. */
  async floor(): Promise<MoveResult> {
    const res = emptyResult('rsync');
    const tag = `floor${++this.seq}`;
    const stage = await this.stage(tag);
    try {
      const c = await coldRsync(this.lab!, stage, tag);
      res.ok = true;
      res.totalMs = c.ms;
      res.bytesMoved = c.bytesSent;
    } catch (e) {
      res.error = (e as Error).message;
    } finally {
      await rm(stage, { recursive: true, force: true });
    }
    return res;
  }

  /** `h1: RUNNING, h2: STOPPED`-style: where the container is after a move. */
  private async whereIs(name: string): Promise<string> {
    const parts: string[] = [];
    for (const h of this.lab!.hosts) {
      const r = await hostExec(h.name, ['lxc-info', '-P', h.lxcPath, '-n', name, '-sH'], { timeoutMs: 10_000 }).then(
        (x) => x.stdout.trim(),
        () => 'absent',
      );
      parts.push(`${h.name}:${r}`);
    }
    return parts.join('; ');
  }

  async close(): Promise<void> {
    if (this.lab) await labDown();
    this.lab = null;
  }
}
