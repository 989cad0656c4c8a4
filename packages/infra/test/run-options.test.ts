import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CommandError } from '@ferry/core';
import { run } from '../src/index.js';

/** Running (a zombie waiting for its reaper counts as ended). */
const alive = (pid: number) => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
};
const childrenOf = (pid: number) =>
  readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
    .trim()
    .split(/\s+/)
    .filter(Boolean)
    .map(Number);

describe('run(): options for long-lived, streamed commands', () => {
  it('onStdoutBytes gets the bytes as they are; the text result is unchanged', async () => {
    const chunks: Buffer[] = [];
    const r = await run('printf', ['\\377\\000h\\303\\251'], { onStdoutBytes: (b) => chunks.push(b) });
    expect(Buffer.concat(chunks)).toEqual(Buffer.from([0xff, 0x00, 0x68, 0xc3, 0xa9]));
    expect(r.stdout).toBe('\ufffd\u0000hé');
  });

  it('onSpawn gives the pid; killSignal is the first signal on abort', async () => {
    const ctl = new AbortController();
    let pid = 0;
    const p = run('sleep', ['30'], { signal: ctl.signal, killSignal: 'SIGINT', onSpawn: (x) => (pid = x) });
    expect(pid).toBeGreaterThan(0);
    ctl.abort();
    await expect(p).rejects.toSatisfy((e) => e instanceof CommandError && e.failure.signal === 'SIGINT');
  });

  it('a signal aborted before the call still stops the command (it never runs to its end)', async () => {
    const ctl = new AbortController();
    ctl.abort();
    const e = await run('sh', ['-c', 'sleep 30; echo finished'], { signal: ctl.signal }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(CommandError);
    expect((e as CommandError).failure).toMatchObject({ signal: 'SIGTERM' });
  });

  it('a killed command whose children keep its output open still ends the call (it does not wait for them)', async () => {
    // `sleep 30 &` inherits the pipes and outlives the shell the timeout kills.
    const e = await run('sh', ['-c', 'sleep 30 & sleep 30'], { timeoutMs: 200 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(CommandError);
    expect((e as CommandError).failure).toMatchObject({ timedOut: true });
  }, 10_000);

  it('outputFile: a command that leaves a daemon holding its output ends at its own exit; a failure carries the file\'s tail', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-run-'));
    const file = join(dir, 'out.log');
    const r = await run('sh', ['-c', 'sleep 30 & echo $! > "$0.pid"; echo started', file], { outputFile: file });
    const daemon = Number(readFileSync(`${file}.pid`, 'utf8'));
    expect(alive(daemon)).toBe(true); // the call did not wait for it, and it was not killed
    expect(readFileSync(file, 'utf8')).toBe('started\n');
    process.kill(daemon, 'SIGKILL');
    const e = await run('sh', ['-c', 'echo why >&2; exit 3'], { outputFile: file }).catch((x: unknown) => x);
    expect((e as CommandError).failure).toMatchObject({ exitCode: 3, stderrTail: 'started\nwhy\n' });
    rmSync(dir, { recursive: true, force: true });
    expect(r.exitCode).toBe(0);
  }, 10_000);

  it('processGroup: the command leads its own group, and a kill reaches its children too', async () => {
    let pid = 0;
    const p = run('sh', ['-c', 'sleep 40 & sleep 41; wait'], { processGroup: true, timeoutMs: 800, onSpawn: (x) => (pid = x) });
    await new Promise((r) => setTimeout(r, 300));
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    expect(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2])).toBe(pid); // pgrp == pid
    const kids = childrenOf(pid);
    expect(kids.length).toBe(2);
    await expect(p).rejects.toSatisfy((e) => e instanceof CommandError && e.failure.timedOut);
    await new Promise((r) => setTimeout(r, 100));
    for (const k of kids) expect(alive(k)).toBe(false);
  });

  it('keep bounds what is kept of the output', async () => {
    const r = await run('head', ['-c', '100000', '/dev/zero'], { keep: 1000 });
    expect(r.stdout.length).toBeLessThan(100_000);
  });
});
