import { describe, expect, it } from 'vitest';
import { ContainerPath, decodeExecEntry, encodeExecEntry, ExecArgv, ExecJobData, HostDir, newToolboxId, parseToolboxJob, ValidationError, type ExecEntry } from '../src/index.js';

describe('toolbox input', () => {
  it.each([
    ['/mnt/share', '/mnt/share'],
    ['/mnt//share/', '/mnt/share'],
    ['/mnt/./share', '/mnt/share'],
    ['/a b/c', '/a b/c'],
  ])('container path %j → %j', (input, out) => {
    expect(ContainerPath.parse(input)).toBe(out);
  });

  it.each([
    ['mnt/share', /must be an absolute path/],
    ['', /is empty/],
    ['/', /cannot be \//],
    ['//', /cannot be \//],
    ['/mnt/../etc', /may not hold '\.\.'/],
    ['/..', /may not hold '\.\.'/],
    ['/mnt/a\nb', /control characters/],
    [`/${'x'.repeat(5000)}`, /longer than 4096/],
  ])('refuses container path %j', (input, message) => {
    const r = ContainerPath.safeParse(input);
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.message).toMatch(message);
  });

  it('host directories: absolute, normalized, no ..', () => {
    expect(HostDir.parse('/srv//share/')).toBe('/srv/share');
    expect(HostDir.parse('/')).toBe('/');
    expect(HostDir.safeParse('srv').success).toBe(false);
    expect(HostDir.safeParse('/srv/../etc').success).toBe(false);
  });

  it('argv: a non-empty list of strings, passed as is', () => {
    const argv = ['printf', '%s\n', `a b "c" 'd'`, '--host', '', '$(id)'];
    expect(ExecArgv.parse(argv)).toEqual(argv);
    expect(ExecArgv.safeParse([]).error?.issues[0]?.message).toMatch(/no command given/);
    expect(ExecArgv.safeParse(['']).error?.issues[0]?.message).toMatch(/command name is empty/);
    expect(ExecArgv.safeParse(['echo', 'a\0b']).error?.issues[0]?.message).toMatch(/NUL/);
    expect(ExecArgv.safeParse(['echo', 'x'.repeat(200_000)]).success).toBe(false);
  });

  it('ids are job-id and key safe and time ordered', () => {
    const a = newToolboxId('x', 1_800_000_000_000);
    const b = newToolboxId('x', 1_800_000_001_000);
    expect(a).toMatch(/^x-[0-9a-z]+$/);
    expect(ExecJobData.safeParse({ execId: a, container: 'web', argv: ['true'], requestedAt: 1 }).success).toBe(true);
    expect(newToolboxId('r')).toMatch(/^r-[0-9a-z]{8,}$/);
    expect(a < b).toBe(true);
  });

  it('an exec job says where it runs: a container, or a fresh context (ferry run); never both, never neither', () => {
    const base = { execId: newToolboxId('x'), argv: ['true'], requestedAt: 1, auth: { sig: 's', exp: 2 } };
    expect(ExecJobData.parse({ ...base, fresh: true })).toEqual({ execId: base.execId, argv: ['true'], requestedAt: 1, fresh: true });
    expect(ExecJobData.parse({ ...base, container: 'web' })).toMatchObject({ container: 'web' });
    expect(ExecJobData.safeParse({ ...base, container: 'web', fresh: true }).success).toBe(false);
    expect(ExecJobData.safeParse({ ...base, fresh: false }).success).toBe(false);
    expect(ExecJobData.safeParse(base).success).toBe(false);
  });

  it('jobs: every bad field named at once', () => {
    try {
      parseToolboxJob({ kind: 'mount', requestId: newToolboxId('r'), container: '../x', hostDir: 'rel', path: '/a/../b', readOnly: false });
      throw new Error('expected a ValidationError');
    } catch (e) {
      expect(e).toBeInstanceOf(ValidationError);
      expect((e as ValidationError).problems.map((p) => p.path).sort()).toEqual(['container', 'hostDir', 'path']);
    }
    expect(parseToolboxJob({ kind: 'umount', requestId: newToolboxId('r'), container: 'web', path: '/mnt/x/' })).toMatchObject({ path: '/mnt/x' });
  });
});

describe('exec stream codec', () => {
  it('every entry survives the wire (fields as Redis returns them: Buffers), and an unknown one decodes to null', () => {
    const wire = (e: ExecEntry) => encodeExecEntry(e).map((x) => (typeof x === 'string' ? Buffer.from(x) : x));
    const all: ExecEntry[] = [
      { type: 'started', pid: 4242 },
      { type: 'stdout', data: Buffer.from([0, 255, 10, 13]) },
      { type: 'stderr', data: Buffer.from('oops\n') },
      { type: 'exit', code: 0 },
      { type: 'exit', code: 143, signal: 'SIGTERM' },
      { type: 'error', code: 'CONTAINER_NOT_RUNNING', message: 'web is STOPPED', exit: 125 },
    ];
    for (const e of all) expect(decodeExecEntry(wire(e))).toEqual(e);
    expect(decodeExecEntry([Buffer.from('type'), Buffer.from('telemetry')])).toBeNull();
    expect(decodeExecEntry([Buffer.from('type'), Buffer.from('exit')])).toBeNull(); // no code: not an exit
  });
});
