/**
 * The `ferry` command as a user first meets it (apps/cli/dist: `npm run build` first): the
 * launcher setup.sh links onto PATH, --version, every command's --help with examples, and the
 * README's CLI section checked against the real options. Help and version end before any Redis
 * is touched; no root, no lab.
 */
import { mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '@ferry/infra';

const CLI = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const ALL = Array.from({ length: 256 }, (_, i) => i);

/**
 * At most a few at once: the tests ask for some 70 help texts, and that many node processes started
 * together on a small, busy machine each took longer than their time bound.
 */
const AT_ONCE = 4;
let running = 0;
const queued: (() => void)[] = [];
const ferry = async (args: string[]) => {
  if (running >= AT_ONCE) await new Promise<void>((go) => queued.push(go));
  running++;
  try {
    const r = await run(process.execPath, [CLI, ...args], { timeoutMs: 30_000, okExitCodes: ALL, env: { ...process.env, REDIS_URL: 'redis://127.0.0.1:1' } });
    return { code: r.exitCode, stdout: r.stdout, stderr: r.stderr };
  } finally {
    running--;
    queued.shift()?.();
  }
};

/** `ferry <words> --help`, once per command line (the two tests ask for the same ones). */
const helps = new Map<string, ReturnType<typeof ferry>>();
const helpOf = (words: string[]) => {
  const key = words.join(' ');
  if (!helps.has(key)) helps.set(key, ferry([...words, '--help']));
  return helps.get(key)!;
};

/** Command names listed under "Commands:" in a help text. */
const commandsOf = (help: string) =>
  [...(help.split('\nCommands:\n')[1]?.split('\n\n')[0] ?? '').matchAll(/^ {2}([a-z][a-z-]*)/gm)].map((m) => m[1]!).filter((c) => c !== 'help');

/** The README's CLI block, one entry per `ferry ...` synopsis (continuation lines joined, `|` split). */
async function readmeSynopses(): Promise<string[]> {
  const md = await readFile(join(ROOT, 'README.md'), 'utf8');
  const section = md.slice(md.indexOf('\n## CLI\n'));
  const open = section.indexOf('```\n') + 4;
  const block = section.slice(open, section.indexOf('\n```', open));
  const lines: string[] = [];
  for (const line of block.split('\n')) {
    if (line.startsWith('ferry ')) lines.push(line);
    else if (lines.length) lines[lines.length - 1] += ` ${line.trim()}`;
  }
  return lines.flatMap((l) => l.split(/\s\|\s(?=ferry )/));
}
/** `ferry rebalance auto [on|off] --every 5m` → ['rebalance', 'auto']: the words before the first argument or option. */
const wordsOf = (synopsis: string) => {
  const words: string[] = [];
  for (const t of synopsis.split(/\s+/).slice(1)) {
    if (!/^[a-z][a-z-]*$/.test(t)) break;
    words.push(t);
  }
  return words;
};
const hasOption = (help: string, flag: string) => new RegExp(`(^|[\\s,])${flag}(?![\\w-])`, 'm').test(help);

describe('ferry on PATH, --version, --help (built CLI)', () => {
  let bin: string;
  beforeAll(async () => {
    bin = await mkdtemp(join(tmpdir(), 'ferry-bin-'));
  });
  afterAll(async () => {
    await rm(bin, { recursive: true, force: true });
  });

  it('--version prints the CLI package version', async () => {
    const { version } = JSON.parse(await readFile(join(ROOT, 'apps/cli/package.json'), 'utf8')) as { version: string };
    const r = await ferry(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(version);
  });

  it('the launcher runs the build through a link, as setup.sh links it onto PATH', async () => {
    await symlink(join(ROOT, 'scripts/ferry'), join(bin, 'ferry'));
    const r = await run('ferry', ['--version'], { okExitCodes: ALL, env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    const setup = await readFile(join(ROOT, 'scripts/setup.sh'), 'utf8');
    // After the build, idempotently (made again only when it points elsewhere).
    expect(setup.indexOf('ln -sfn "$ferry_launcher" "$ferry_link"')).toBeGreaterThan(setup.indexOf('npm run build --silent'));
  });

  it('every command and subcommand has --help with examples', async () => {
    const top = await helpOf([]);
    expect(top.code).toBe(0);
    const commands = commandsOf(top.stdout);
    expect(commands).toEqual(expect.arrayContaining(['migrate', 'clone', 'unify', 'status', 'list', 'watch', 'retry', 'cancel', 'hosts', 'dashboard', 'exec', 'worker', 'scheduler', 'lab']));
    const missing: string[] = [];
    const visit = async (path: string[]): Promise<void> => {
      if (path.length > 3) return void missing.push(`${path.join(' ')}: nested too deep`);
      const r = await helpOf(path);
      if (r.code !== 0 || !new RegExp(`\\nExamples:\\n {2}(\\S+=\\S+ )?ferry ${path.join(' ')}\\b`).test(r.stdout)) missing.push(`${path.join(' ')} (exit ${r.code})`);
      await Promise.all(commandsOf(r.stdout).map((sub) => visit([...path, sub])));
    };
    await Promise.all(commands.map((c) => visit([c])));
    expect(missing.sort()).toEqual([]);
  });

  it("the README's CLI section names only options the commands have, and every command", async () => {
    const synopses = await readmeSynopses();
    expect(synopses.length).toBeGreaterThan(20);
    const wrong: string[] = [];
    const named = new Set<string>();
    await Promise.all(synopses.map((s) => helpOf(wordsOf(s))));
    for (const s of synopses) {
      const words = wordsOf(s);
      named.add(words[0]!);
      const help = await helpOf(words);
      if (help.code !== 0) {
        wrong.push(`${s}: ferry ${words.join(' ')} --help exits ${help.code}`);
        continue;
      }
      for (const flag of new Set([...s.matchAll(/(?<![\w-])--[a-z][a-z-]*/g)].map((m) => m[0]))) {
        if (!hasOption(help.stdout, flag)) wrong.push(`ferry ${words.join(' ')}: ${flag} is not an option`);
      }
    }
    expect(wrong).toEqual([]);
    expect(commandsOf((await helpOf([])).stdout).filter((c) => !named.has(c))).toEqual([]);
  });
});
