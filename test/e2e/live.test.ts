import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { OperationSummary } from '@ferry/core';
import { labContainerCreate, type LabInfo } from '@ferry/lab';
import { run, startHelper, type Helper } from '@ferry/infra';
import { findCriu } from '../../apps/worker/src/runtime/criu.js';
import { containerState, ferry, httpFrom, switchPortOf, useLab } from '../support/lab.js';

/**
 * Live migration in the lab, with the CRIU the workers use (scripts/setup.sh builds one where the
 * system's fails). The container runs ferry-memsvc: a counter that lives only in its memory
 * (HTTP :8080), a region of memory it keeps dirtying and can check, and a line echo on :9000 on
 * which the test holds one TCP connection across the move.
 */
const memsvc = fileURLToPath(new URL('../../apps/lab/native/ferry-memsvc', import.meta.url));
const criu = findCriu();
const skipWhy =
  process.getuid?.() !== 0
    ? 'needs root'
    : !existsSync(memsvc)
      ? `${memsvc} is not built (scripts/setup.sh builds it)`
      : await run(criu, ['check'], { timeoutMs: 30_000 }).then(
          () => undefined,
          () => `${criu} check fails here (scripts/setup.sh builds a working CRIU with FERRY_CRIU_SRC)`,
        );
if (skipWhy) console.warn(`live.test.ts skipped: ${skipWhy}`);

interface Svc {
  pid: number;
  count: number;
  intact?: boolean;
}

async function svc(netns: string, ip: string, check = false): Promise<Svc | null> {
  const body = await httpFrom(netns, `http://${ip}:8080/${check ? 'check' : ''}`, 5);
  const m = body && /pid=(\d+) count=(\d+) mib=\d+(?: intact=(\d))?/.exec(body);
  return m ? { pid: Number(m[1]), count: Number(m[2]), ...(m[3] !== undefined ? { intact: m[3] === '1' } : {}) } : null;
}

/** One TCP connection to the container's echo port, held open by busybox nc in the client's namespace. */
function holdConnection(netns: string, ip: string): { ask(line: string): Promise<string>; close(): void; helper: Helper } {
  const helper = startHelper('nsenter', [`--net=/run/netns/${netns}`, '--', 'busybox', 'nc', ip, '9000']);
  let buf = '';
  const waiters: ((line: string) => void)[] = [];
  helper.onStdout((b) => {
    buf += b.toString('utf8');
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      waiters.shift()?.(line);
    }
  });
  return {
    helper,
    ask: (line) =>
      new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no answer to "${line}" on the held connection (nc: ${helper.stderrTail()})`)), 10_000);
        waiters.push((l) => {
          clearTimeout(t);
          resolve(l);
        });
        helper.write(`${line}\n`);
      }),
    close: () => helper.stop(),
  };
}

describe.skipIf(skipWhy !== undefined)('live migration (CRIU) in the lab', () => {
  const { lab: getLab, host: h } = useLab(2, { live: true });
  let lab: LabInfo;
  const held: { close(): void }[] = [];

  beforeAll(() => {
    lab = getLab();
  });
  afterEach(() => {
    for (const c of held.splice(0)) c.close();
  });

  it('moves a running service with its processes, memory and an open TCP connection: same PID, the counter goes on, the connection answers', async () => {
    const ct = await labContainerCreate({ name: 'mem1', host: 'h1', memoryMb: 64 });
    let before = await svc(lab.client.netns, ct.ip); // memsvc listens once its memory is filled
    for (let i = 0; i < 50 && !before; i++) before = await svc(lab.client.netns, ct.ip);
    expect(before).not.toBeNull();
    const conn = holdConnection(lab.client.netns, ct.ip);
    held.push(conn);
    const first = await conn.ask('before');
    expect(first).toMatch(/^\d+ before$/);

    // --mode auto: both hosts can checkpoint, so it goes live, and says why.
    const r = await ferry(['migrate', 'mem1', '--from', 'h1', '--to', 'h2', '--wait', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as OperationSummary & { modeReason?: string };
    expect(s.state).toBe('done');
    expect(s.mode).toBe('live');
    expect(s.modeReason).toBe('auto: h1 and h2 can both checkpoint/restore');
    expect(s.memoryBytes).toBeGreaterThan(64 * 1024 * 1024); // its memory went in the dump, apart from the files
    const status = JSON.parse((await ferry(['status', s.id, '--json'])).stdout);
    const steps = status.record.steps as { name: string; output?: { method?: string } }[];
    expect(steps.find((x) => x.name === 'checkpoint')!.output!.method).toBe('dump');

    expect(await containerState('h2', h('h2').lxcPath, 'mem1')).toBe('RUNNING');
    expect(await containerState('h1', h('h1').lxcPath, 'mem1')).toBeNull(); // the source copy is gone
    expect(await switchPortOf(lab.switch.bridge, ct.mac)).toBe(h('h2').uplink);

    // The same process (its PID in the container's namespace), its memory intact, its counter
    // counting on from where it was: a restarted service would count from 0 with a new PID.
    const after = await svc(lab.client.netns, ct.ip, true);
    expect(after).toMatchObject({ pid: before!.pid, intact: true });
    expect(after!.count).toBeGreaterThanOrEqual(Number(first.split(' ')[0]));
    // The connection opened before the move is the same one, and the same process answers it.
    const again = await conn.ask('after');
    expect(again).toMatch(/^\d+ after$/);
    expect(Number(again.split(' ')[0])).toBeGreaterThanOrEqual(Number(first.split(' ')[0]));
  });

  it('--mode restart on the same hosts restarts the service (its in-memory counter starts over): what live mode avoids', async () => {
    const ct = await labContainerCreate({ name: 'mem2', host: 'h1', memoryMb: 16 });
    // Counted well past what a fresh start reaches before the test can ask again (10 a second).
    let before = await svc(lab.client.netns, ct.ip);
    for (let i = 0; i < 100 && (before?.count ?? 0) < 80; i++) {
      await new Promise((res) => setTimeout(res, 200));
      before = await svc(lab.client.netns, ct.ip);
    }
    expect(before!.count).toBeGreaterThanOrEqual(80);
    const r = await ferry(['migrate', 'mem2', '--from', 'h1', '--to', 'h2', '--mode', 'restart', '--wait', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as OperationSummary & { modeReason?: string };
    expect(s.mode).toBe('restart');
    expect(s.modeReason).toBe('asked for (--mode restart)');
    const after = await svc(lab.client.netns, ct.ip);
    expect(after!.count).toBeLessThan(before!.count);
  });
});
