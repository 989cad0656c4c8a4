import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { COMMANDS_DIR, readScriptFiles } from '../src/redis/scripts.js';

/** The numbers `i` of every `NAME[i]` in `text`, sorted, once each. */
const indices = (text: string, name: 'KEYS' | 'ARGV') => [...new Set([...text.matchAll(new RegExp(`\\b${name}\\[(\\d+)\\]`, 'g'))].map((m) => Number(m[1])))].sort((a, b) => a - b);
const oneTo = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

// BullMQ's style (src/commands/*.lua): `<name>-<numberOfKeys>.lua`, opening with a comment that
// says what the script does, then `Input:` naming each KEYS[i] and ARGV[i], then `Output:`.
describe('Lua scripts in packages/infra/commands', () => {
  const names = readdirSync(COMMANDS_DIR).filter((f) => f.endsWith('.lua'));
  const files = readScriptFiles();

  it('are there, each named <kebab-name>-<numberOfKeys>.lua', () => {
    expect(names.length).toBeGreaterThan(0);
    expect([...files.values()].map((f) => f.path.slice(COMMANDS_DIR.length)).sort()).toEqual([...names].sort());
  });

  describe.each([...files.values()])('$name ($numberOfKeys keys)', (f) => {
    const m = /^--\[\[\n([\s\S]*?)\n\]\]\n/.exec(f.lua);
    const header = m?.[1] ?? '';
    const body = f.lua.slice(m?.[0].length ?? 0);
    const [what = '', rest = ''] = header.split(/^\s*Input:\s*$/m);
    const [input = '', output] = rest.split(/^\s*Output:\s*$/m);

    it('opens with a comment block: what it does, Input:, Output:', () => {
      expect(header, 'no --[[ … ]] header').not.toBe('');
      expect(what.trim().length, 'no description before Input:').toBeGreaterThan(20);
      expect(rest, 'no Input: line').not.toBe('');
      expect(output?.trim(), 'no Output: section').toBeTruthy();
    });

    it('names KEYS[1..n] in Input:, n as in its file name, and uses no other key', () => {
      const documented = input.split('\n').filter((l) => /^\s*KEYS\[\d+\]\s+\S/.test(l));
      expect(indices(documented.join('\n'), 'KEYS')).toEqual(oneTo(f.numberOfKeys));
      expect(documented).toHaveLength(f.numberOfKeys);
      expect(indices(body, 'KEYS').every((i) => i <= f.numberOfKeys)).toBe(true);
    });

    it('names each ARGV[i] it uses in Input:, with no gaps', () => {
      const documented = input.split('\n').filter((l) => /^\s*ARGV\[\d+\]\s+\S/.test(l));
      const argv = indices(documented.join('\n'), 'ARGV');
      expect(argv).toEqual(oneTo(argv.length));
      expect(documented).toHaveLength(argv.length);
      expect(indices(body, 'ARGV')).toEqual(argv);
    });
  });
});
