import { describe, expect, it } from 'vitest';
import { bullmqKeys, fields, keys, toolboxKeys } from '../src/index.js';

describe('Redis keys and hash fields', () => {
  it('spells every key under the prefix', () => {
    const k = keys('p');
    expect([k.migration('m-1'), k.progress('m-1'), k.starts('m-1'), k.replays('m-1'), k.migrations]).toEqual(['p:mig:m-1', 'p:mig:m-1:progress', 'p:mig:m-1:starts', 'p:mig:m-1:replays', 'p:migs']);
    expect([k.lock('web'), k.owner('web'), k.hosts, k.hostsAlive, k.all]).toEqual(['p:lock:web', 'p:owner:web', 'p:hosts', 'p:hosts-alive', 'p:*']);
    const t = toolboxKeys('p');
    expect([t.execOut('x-1'), t.execCtl('x-1'), t.execAll, t.reply('r-1')]).toEqual(['p:exec:x-1', 'p:exec:x-1:ctl', 'p:exec:*', 'p:toolbox:r-1:reply']);
    expect(bullmqKeys.jobLock('p:host-h1:j1')).toBe('p:host-h1:j1:lock');
  });

  it('names a step `<phase>.<index>` and a run of it `<phase>.<index>.<run>`', () => {
    expect(fields.progress('forward', 2)).toBe('forward.2');
    expect(fields.step('rollback', 0)).toBe('rollback.0');
    expect(fields.start('forward', 2, 1)).toBe('forward.2.1');
    expect(fields.replay('forward', 2, 1)).toBe('forward.2.1');
    expect(fields.stepOfRun(fields.start('rollback', 11, 3))).toBe(fields.step('rollback', 11));
    expect(fields.owner).toEqual({ epoch: 'epoch', host: 'host' });
    expect(fields.host('h1')).toBe('h1');
  });
});
