import { describe, expect, it } from 'vitest';
import { parseMigrationRequest, ValidationError } from '../src/index.js';

function problems(input: unknown) {
  try {
    parseMigrationRequest(input);
  } catch (e) {
    expect(e).toBeInstanceOf(ValidationError);
    return (e as ValidationError).problems;
  }
  throw new Error('expected a ValidationError');
}

describe('migration request', () => {
  it('accepts a minimal request and fills defaults', () => {
    const r = parseMigrationRequest({ container: 'web', from: 'h1', to: 'h2' });
    expect(r.mode).toBe('auto');
    expect(r.options).toMatchObject({ keepSource: false, arpRefresh: true, verify: 'changed' });
    expect(r.options.precopy.maxPasses).toBe(5);
  });

  it.each([['../x'], ['a;b'], ['x'.repeat(300)], [''], ['.hidden'], ['a b'], ['$(id)']])('rejects container name %j', (name) => {
    const p = problems({ container: name, from: 'h1', to: 'h2' });
    expect(p.map((x) => x.path)).toContain('container');
  });

  it('rejects the same host as source and target, naming the field', () => {
    expect(problems({ container: 'web', from: 'h1', to: 'h1' })).toEqual([
      { path: 'to', message: 'source and target are the same host' },
    ]);
  });

  it('reports every problem at once', () => {
    const p = problems({ container: 'a;b', from: '../h', to: '', mode: 'teleport', options: { bwlimitKBps: -1 } });
    expect(p.map((x) => x.path).sort()).toEqual(['container', 'from', 'mode', 'options.bwlimitKBps', 'to']);
  });

  it('rejects a missing container with a clear message', () => {
    const p = problems({ from: 'h1', to: 'h2' });
    expect(p[0]).toMatchObject({ path: 'container' });
    expect(p[0]!.message).toMatch(/container name is required/);
  });
});
