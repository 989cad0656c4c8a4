#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { OPERATION_LOG, summarize, type StoredRecord } from '@ferry/core';
import { EXIT, ExitError } from './exit-error.js';
import { exitCodeOf, waitFor } from './commands/migrate.js';
import { watch } from './commands/watch.js';
import { registerCheckpointCommands } from './commands/checkpoint.js';
import { registerInstallCommands } from './commands/install.js';
import { registerApiCommands } from './commands/api.js';
import { renderHosts, renderList, renderStatus } from './render.js';
import type { Ferry } from './service/ferry.js';
import { withFerry as withFerryOf, withRedisOnly as withRedisOnlyOf, type ApiFlags } from './with-ferry.js';

import { examples, exitCodeOfRun, json, num, print } from './entry.js';

/** The CLI package's version (apps/cli/package.json; dist/main.js and src/main.ts sit one below it). */
const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

function buildProgram(setExit: (code: number) => void): Command {
  const program = new Command('ferry')
    .description('Move OS-level containers between Linux hosts: resumable multi-host workflows on Redis.')
    .version(VERSION)
    .showHelpAfterError()
    // A subcommand's options are its own (`rebalance history --json` is history's, not rebalance's).
    .enablePositionalOptions()
    .exitOverride()
    .option('--api <url>', "talk to ferry's API (https://HOST:PORT, http://127.0.0.1:PORT, unix:/path) instead of Redis (or FERRY_API)")
    .option('--token <token>', 'bearer token for --api over TCP (or FERRY_TOKEN, which ps does not show)');
  /** Through the API when --api/FERRY_API is set, else Redis (as root where the scheduler runs). */
  const withFerry = <T>(fn: (f: Ferry) => Promise<T>) => withFerryOf(program.opts<ApiFlags>(), fn);
  const withRedisOnly = <T>(command: string, fn: Parameters<typeof withRedisOnlyOf<T>>[2]) => withRedisOnlyOf(program.opts<ApiFlags>(), command, fn);
  /** How migrate --wait, clone and unify end: wait for the operation, print it, exit by its outcome. */
  const finish = async (f: Ferry, id: string, asJson: boolean, details?: (r: StoredRecord) => { json: object; text: () => Promise<string> } | undefined) => {
    const r = await waitFor(f, id);
    const more = details?.(r);
    if (asJson) json({ ...summarize(r), ...more?.json });
    else print(more ? `${renderStatus(r)}\n${await more.text()}` : renderStatus(r));
    setExit(exitCodeOf(r));
  };
  program.addHelpText(
    'after',
    [
      '',
      "Exit codes: 0 done, 1 the operation failed, 2 bad input, 3 refused by ferry's API (401: the token; 403: its role or scope).",
      'Redis: REDIS_URL (redis://host:port, unix:///path, redis+sentinel://host:port,host:port/<master>, redis+cluster://host:port,host:port), or ferry starts its own private redis-server (state in $FERRY_STATE_DIR or ~/.local/state/ferry).',
      "ferry's API instead (no Redis, no key here): FERRY_API=https://HOST:PORT and FERRY_TOKEN, or FERRY_API=unix:/path as root (ferry api --help).",
    ].join('\n'),
  );

  program
    .command('migrate')
    .description('migrate a container from one host to another')
    .argument('<container>', 'container name')
    .requiredOption('--from <host>', 'source host')
    .requiredOption('--to <host>', "target host, or auto: where it fits and leaves the least utilization (the rebalancing policy's placement)")
    .addOption(new Option('--mode <mode>', 'live (checkpoint/restore), restart, or auto').choices(['auto', 'live', 'restart']).default('auto'))
    .option('--bwlimit <KiB/s>', 'limit the transfer bandwidth', num('--bwlimit'))
    .option('--keep-source', 'keep the stopped source copy after success')
    .option('--no-arp-refresh', 'do not send gratuitous ARP from the target')
    .addOption(
      new Option('--verify <level>', 'before the target starts, compare it with the frozen source: changed (metadata of all, content of what the final pass sent), full (all content and xattrs), off')
        .choices(['changed', 'full', 'off'])
        .default('changed'),
    )
    .option('--no-verify', 'do not compare (same as --verify off)')
    .option('--max-passes <n>', 'most pre-copy passes', num('--max-passes'))
    .option('--wait', 'wait until the migration ends; exit 0 only if done')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      examples(
        ['ferry migrate web --from h1 --to h2 --wait', 'ferry migrate web --from h1 --to auto --mode live', 'ferry migrate db --from h2 --to h3 --bwlimit 50000 --verify full --json'],
        'Without --wait it prints the id and returns; follow it with ferry watch <id>.',
      ),
    )
    .action(async (container: string, o) => {
      await withFerry(async (f) => {
        const { id, to } = await f.migrate({
          container,
          from: o.from,
          to: o.to,
          mode: o.mode,
          options: {
            ...(o.bwlimit !== undefined ? { bwlimitKBps: o.bwlimit } : {}),
            keepSource: Boolean(o.keepSource),
            arpRefresh: o.arpRefresh !== false,
            verify: o.verify === false ? 'off' : o.verify,
            ...(o.maxPasses !== undefined ? { precopy: { maxPasses: o.maxPasses, stopBelowBytes: 8 * 1024 * 1024, minShrink: 0.8 } } : {}),
          },
        });
        if (o.to === 'auto' && !o.json) process.stderr.write(`ferry: --to auto: ${container} goes to ${to}\n`);
        if (!o.wait) {
          if (o.json) json({ id, ...(o.to === 'auto' ? { to } : {}) });
          else print(`${id}\nwatch it: ferry watch ${id}`);
          return;
        }
        await finish(f, id, Boolean(o.json));
      });
    });

  program
    .command('clone')
    .description('copy a container, here or to another host, and give the copy its own identity')
    .argument('<source>', 'container to copy')
    .argument('<new>', "the clone's name")
    .option('--from <host>', 'host of the source (default: the one that has it)')
    .option('--to <host>', 'host for the clone (default: the source host; auto: where it fits and leaves the least utilization)')
    .option('--ip <ip>', "the clone's IPv4 address (needed when the source has a static one)")
    .option('--hostname <name>', "the clone's hostname (default: its name)")
    .option('--freeze', 'copy a running source while frozen, then thaw it')
    .option('--bwlimit <KiB/s>', 'limit the transfer bandwidth', num('--bwlimit'))
    .option('--json', 'print JSON')
    .addHelpText('after', examples(['ferry clone web web2', 'ferry clone web web-copy --to h2 --ip 10.0.3.50', 'ferry clone web web3 --to auto --freeze --json']))
    .action(async (source: string, name: string, o) => {
      await withFerry(async (f) => {
        const { id, to } = await f.clone({
          container: source,
          name,
          ...(o.from ? { from: o.from } : {}),
          ...(o.to ? { to: o.to } : {}),
          ...(o.ip ? { ip: o.ip } : {}),
          ...(o.hostname ? { hostname: o.hostname } : {}),
          freeze: Boolean(o.freeze),
          ...(o.bwlimit !== undefined ? { bwlimitKBps: o.bwlimit } : {}),
        });
        if (o.to === 'auto' && !o.json) process.stderr.write(`ferry: --to auto: the copy goes to ${to}\n`);
        await finish(f, id, Boolean(o.json));
      });
    });

  program
    .command('unify')
    .description('share identical files among containers of one host (dedupe: shared blocks; hardlink: shared inodes)')
    .argument('<containers...>', 'containers on one host')
    .option('--host <host>', 'their host (default: the one that has the first)')
    .addOption(new Option('--mode <mode>', 'dedupe (XFS reflink, btrfs; safe on running containers) or hardlink (stopped containers)').choices(['dedupe', 'hardlink']).default('dedupe'))
    .option('--dry-run', 'report what would be shared; change nothing')
    .option('--revert', 'undo hardlink mode for these containers, from the journal')
    .option('--exclude <rule>', 'an extra exclusion rule in the vunify format (repeatable)', (v: string, all: string[]) => [...all, v], [] as string[])
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      examples(
        ['ferry unify u1 u2 --dry-run', 'ferry unify u1 u2 u3 --host h1', "ferry unify u1 u2 --mode hardlink --exclude '/var/lib/app/*'", 'ferry unify u1 u2 --mode hardlink --revert'],
        'A dry run counts duplicates on any file system and says which mode could share them there.',
      ),
    )
    .action(async (containers: string[], o) => {
      await withFerry(async (f) => {
        const { id } = await f.unify({ containers, ...(o.host ? { host: o.host } : {}), mode: o.mode, dryRun: Boolean(o.dryRun), revert: Boolean(o.revert), excludes: o.exclude });
        await finish(f, id, Boolean(o.json), (r) => {
          const report = r.state === 'rejected' ? undefined : r.steps[0]?.output;
          if (!report) return undefined;
          const text = async () => {
            const { formatReport } = await import('@ferry/worker'); // only the text form needs it
            return formatReport(report as Parameters<typeof formatReport>[0]);
          };
          return { json: { report }, text };
        });
      });
    });

  registerCheckpointCommands(program, withFerry, (f, id, asJson) => finish(f, id, asJson));

  program
    .command('status')
    .description("show an operation's (migrate, clone, unify) state, steps and figures")
    .argument('<id>', 'operation id')
    .option('--json', 'print JSON')
    .addHelpText('after', examples(['ferry status m-mipz3k8wq4x7a1', 'ferry status m-mipz3k8wq4x7a1 --json']))
    .action(async (id: string, o) => {
      await withFerry(async (f) => {
        const v = await f.operation({ id });
        if (!v) throw new ExitError(EXIT.badInput, `no operation with id ${id}`);
        if (o.json) json({ ...summarize(v.record), record: v.record, progress: v.progress });
        else print(renderStatus(v.record, v.progress));
      });
    });

  program
    .command('list')
    .description('list operations (migrate, clone, unify), newest first')
    .option('--limit <n>', 'how many', num('--limit'), 50)
    .option('--json', 'print JSON')
    .addHelpText('after', examples(['ferry list', 'ferry list --limit 10 --json']))
    .action(async (o) => {
      await withFerry(async (f) => {
        const rs = await f.operations({ limit: o.limit });
        if (o.json) json(rs.map(summarize));
        else print(renderList(rs));
      });
    });

  program
    .command('watch')
    .description('follow an operation live, with transfer progress')
    .argument('<id>', 'operation id')
    .addHelpText('after', examples(['ferry watch m-mipz3k8wq4x7a1'], 'Exits when it ends or pauses: 0 done, 1 otherwise.'))
    .action(async (id: string) => {
      await withFerry(async (f) => setExit(await watch(f, id)));
    });

  program
    .command('logs')
    .description("print an operation's log: its steps' lines from every host they ran on, and the scheduler's, in order")
    .argument('<id>', 'operation id')
    .option('-f, --follow', 'print new lines as they come, until the operation ends')
    .option('--json', 'print each line as JSON')
    .addHelpText(
      'after',
      examples(
        ['ferry logs m-mipz3k8wq4x7a1', 'ferry logs m-mipz3k8wq4x7a1 --follow', 'ferry logs m-mipz3k8wq4x7a1 --json'],
        'Columns: time, host (or scheduler), step, level, message and its fields; info and above.',
        `At most ${OPERATION_LOG.maxLen} lines an operation (the oldest go first), each cut to ${OPERATION_LOG.lineBytes} bytes;`,
        'removed with the operation by ferry gc.',
        '--follow exits when the operation ends: 0 done, 1 otherwise; without it, 0. Unknown id: 2.',
      ),
    )
    .action(async (id: string, o) => {
      const { logs } = await import('./commands/logs.js');
      await withFerry(async (f) => setExit(await logs(f, id, { follow: Boolean(o.follow), json: Boolean(o.json) })));
    });

  for (const kind of ['retry', 'cancel'] as const) {
    program
      .command(kind)
      .description(kind === 'retry' ? 'resume a paused operation from its failed step' : 'stop an operation safely (rolls back when past the freeze)')
      .argument('<id>', 'operation id')
      .option('--wait', 'wait until it ends or pauses again')
      .addHelpText('after', examples([`ferry ${kind} m-mipz3k8wq4x7a1`, `ferry ${kind} m-mipz3k8wq4x7a1 --wait`]))
      .action(async (id: string, o) => {
        await withFerry(async (f) => {
          const { version } = await f.control({ id, kind });
          if (!o.wait) return print(`${kind} requested for ${id}`);
          // The record as it was when asked still shows paused: wait for the scheduler's answer.
          const r = await waitFor(f, id, undefined, undefined, version);
          print(renderStatus(r));
          setExit(kind === 'cancel' ? (r.state === 'rolled-back' ? EXIT.ok : EXIT.failed) : exitCodeOf(r));
        });
      });
  }

  program
    .command('hosts')
    .description('hosts whose workers have registered: load (cpu, memory, free disk), containers and their load')
    .option('--json', 'print JSON')
    .addHelpText('after', examples(['ferry hosts', 'ferry hosts --json']))
    .action(async (o) => {
      await withFerry(async (f) => {
        const hosts = await f.hosts({});
        if (o.json) return json(hosts);
        print(renderHosts(hosts));
      });
    });

  program
    .command('dashboard')
    .description('serve a read-only web dashboard: hosts and their load, operations running now with live step progress, the history with its figures, a queue inspector')
    .option('--listen <addr:port>', 'where it listens: ADDR:PORT, [v6]:PORT, or PORT for 127.0.0.1 (0: any free port)', '127.0.0.1:9480')
    .option('--allow-remote', 'listen on an address that is not loopback (the dashboard has no authentication)')
    .addHelpText(
      'after',
      examples(
        ['ferry dashboard', 'ferry dashboard --listen 9481', 'ssh -t -L 9480:127.0.0.1:9480 root@scheduler-host ferry dashboard   # from your desk: open http://127.0.0.1:9480/'],
        'Read-only: nothing on it starts, stops or changes anything (use the CLI for that).',
        'Bound to loopback: an address that is not is refused (exit 2) unless --allow-remote is given;',
        'whoever reaches it then sees every host, container, operation and job. Runs until Ctrl-C or SIGTERM.',
      ),
    )
    .action(async (o: { listen: string; allowRemote?: boolean }) => {
      const { dashboardCommand } = await import('./commands/dashboard.js');
      setExit(await dashboardCommand(o, print));
    });

  program
    .command('pin')
    .description('keep a container where it is (or on --host): rebalancing never moves it')
    .argument('<container>')
    .option('--host <host>', 'the host it must stay on')
    .addHelpText('after', examples(['ferry pin db', 'ferry pin db --host h2']))
    .action(async (container: string, o) => {
      await withFerry(async (f) => print((await f.pin({ container, ...(o.host ? { host: o.host } : {}) })).message));
    });
  program
    .command('unpin')
    .description('let rebalancing move a pinned container again')
    .argument('<container>')
    .addHelpText('after', examples(['ferry unpin db']))
    .action(async (container: string) => {
      await withFerry(async (f) => print((await f.unpin({ container })).message));
    });
  program
    .command('cordon')
    .description('place no container on a host (its containers stay)')
    .argument('<host>')
    .addHelpText('after', examples(['ferry cordon h3'], 'ferry drain h3 also moves its containers off.'))
    .action(async (host: string) => {
      await withFerry(async (f) => print((await f.cordon({ host })).message));
    });
  program
    .command('uncordon')
    .description('let containers be placed on a host again')
    .argument('<host>')
    .addHelpText('after', examples(['ferry uncordon h3']))
    .action(async (host: string) => {
      await withFerry(async (f) => print((await f.uncordon({ host })).message));
    });
  const antiAffinity = program
    .command('anti-affinity')
    .description('groups of containers that never share a host: rebalancing, drain and --to auto keep them apart')
    .addHelpText('after', examples(['ferry anti-affinity add db db1 db2 db3', 'ferry anti-affinity list', 'ferry anti-affinity remove db3']));
  antiAffinity
    .command('add')
    .description('put containers in an anti-affinity group (a container is in one group at most)')
    .argument('<group>')
    .argument('<containers...>')
    .addHelpText('after', examples(['ferry anti-affinity add db db1 db2 db3']))
    .action(async (group: string, containers: string[]) => {
      await withFerry(async (f) => print((await f.groupAdd({ group, containers })).message));
    });
  antiAffinity
    .command('remove')
    .description('take containers out of their anti-affinity group')
    .argument('<containers...>')
    .addHelpText('after', examples(['ferry anti-affinity remove db3']))
    .action(async (containers: string[]) => {
      await withFerry(async (f) => print((await f.groupRemove({ containers })).message));
    });
  antiAffinity
    .command('list')
    .description('every anti-affinity group and its containers')
    .option('--json', 'print JSON')
    .addHelpText('after', examples(['ferry anti-affinity list', 'ferry anti-affinity list --json']))
    .action(async (o) => {
      await withFerry(async (f) => {
        const groups = await f.groups({});
        if (o.json) return json(groups);
        const names = Object.keys(groups).sort();
        print(names.length ? names.map((g) => `${g}: ${groups[g]!.join(' ')}`).join('\n') : 'no anti-affinity groups');
      });
    });
  const rebalance = program
    .command('rebalance')
    .enablePositionalOptions()
    .description('run one rebalance round now (a scheduler runs it), or show its plan with --dry-run; auto, history, policy')
    .option('--dry-run', 'print the plan (hosts before → after, moves with reason and cost); enqueue nothing')
    .option('--allow-restart', 'this round may move containers that cannot move live (they restart)')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      examples(
        ['ferry rebalance --dry-run', 'ferry rebalance --allow-restart --json', 'ferry rebalance auto on --every 5m', 'ferry rebalance history --limit 3', 'ferry rebalance policy --set threshold=0.15'],
        'Exit codes: 0 every move done (or none needed), 1 a move failed, 2 bad input.',
      ),
    )
    .action(async (o) => {
      const r = await import('./commands/rebalance.js');
      await withFerry(async (f) => {
        if (o.dryRun) {
          const d = await f.rebalancePlan({ allowRestart: Boolean(o.allowRestart) });
          return o.json ? json(d) : print(r.renderDryRun(d));
        }
        const { id } = await f.startRound({ allowRestart: Boolean(o.allowRestart) });
        const round = await r.awaitRound(f, id);
        if (o.json) json(round);
        else print(r.renderRound(round, { notes: true }));
        setExit(r.roundExit(round));
      });
    });
  rebalance
    .command('auto')
    .description('automatic rounds: on (every --every, acting above --threshold), off, or (no argument) how they are set')
    .argument('[on|off]')
    .option('--every <duration>', 'time between rounds: 30s, 5m, 1h (default 5m, or as set before)')
    .option('--threshold <x>', 'act when the hottest host is this far above the mean utilization: 0.15 or 15% (stored in the policy)')
    .option('--json', 'print JSON')
    .addHelpText('after', examples(['ferry rebalance auto', 'ferry rebalance auto on --every 5m --threshold 15%', 'ferry rebalance auto off']))
    .action(async (what: string | undefined, o) => {
      const r = await import('./commands/rebalance.js');
      await withFerry(async (f) => {
        const set = r.checkAutoArgs(what, o);
        const a = set === undefined ? await f.autoState({}) : await f.setAuto({ on: set === 'on', ...(o.every !== undefined ? { every: o.every } : {}), ...(o.threshold !== undefined ? { threshold: o.threshold } : {}) });
        if (o.json) json(a);
        else print(r.renderAuto(a));
      });
    });
  rebalance
    .command('history')
    .description('the latest rounds, newest first: plan, reasons, each move and how it ended')
    .option('--limit <n>', 'how many', num('--limit'), 10)
    .option('--json', 'print JSON')
    .addHelpText('after', examples(['ferry rebalance history', 'ferry rebalance history --limit 3 --json']))
    .action(async (o) => {
      const r = await import('./commands/rebalance.js');
      await withFerry(async (f) => {
        const rounds = await f.rounds({ limit: o.limit });
        if (o.json) return json(rounds);
        print(rounds.length ? rounds.map((x) => r.renderRound(x)).join('\n') : 'no rounds yet');
      });
    });

  program
    .command('drain')
    .description('cordon a host and move every container off it, by the same placement as rebalancing (all or nothing)')
    .argument('<host>')
    .option('--wait', 'wait until every move has ended; exit 0 only if all are done')
    .option('--allow-restart', 'move containers that cannot move live (they restart)')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      examples(
        ['ferry drain h1', 'ferry drain h1 --wait --allow-restart'],
        'Exit 1 naming each container that fits nowhere; then nothing is moved (and a cordon the drain made is taken back).',
        'ferry uncordon <host> takes containers again.',
      ),
    )
    .action(async (host: string, o) => {
      await withFerry(async (f) => {
        const d = await f.drain({ host, allowRestart: Boolean(o.allowRestart) });
        if (!o.wait) {
          if (o.json) return json(d);
          if (!d.moves.length) return print(`${host} cordoned; it has no containers`);
          print(`${host} cordoned; ${d.moves.length} move(s) submitted:`);
          for (const m of d.moves) print(`  ${m.container}  ${m.from} → ${m.to}  ${m.mode}  ${m.migrationId}`);
          return;
        }
        const ends = [];
        for (const m of d.moves) ends.push({ ...m, state: (await waitFor(f, m.migrationId)).state });
        if (o.json) json({ ...d, moves: ends });
        else {
          print(`${host} cordoned; ${ends.length} move(s):`);
          for (const m of ends) print(`  ${m.container}  ${m.from} → ${m.to}  ${m.mode}  ${m.migrationId}  ${m.state}`);
        }
        setExit(ends.every((m) => m.state === 'done') ? EXIT.ok : EXIT.failed);
      });
    });
  rebalance
    .command('policy')
    .description('show the rebalancing policy, or change settings with --set key=value')
    .option('--set <key=value...>', 'settings to change (checked together; nothing is stored if one is wrong)')
    .option('--json', 'print JSON')
    .addHelpText('after', examples(['ferry rebalance policy', 'ferry rebalance policy --set threshold=0.15 maxMoves=3']))
    .action(async (o) => {
      await withFerry(async (f) => {
        const p = o.set?.length ? await f.setPolicy({ settings: o.set }) : await f.policy({});
        if (o.json) return json(p);
        for (const [k, v] of Object.entries(p)) print(`${k} = ${String(v)}`);
      });
    });

  program
    .command('exec')
    .usage('[--host <host>] [--timeout <seconds>] <container> -- <command> [args...]')
    .description("run a command in a running container, from any machine that reaches ferry's Redis")
    .argument('<container>', 'container name')
    .argument('<command...>', 'the command and its arguments (after --, passed as they are, no shell)')
    .option('--host <host>', 'host of the container (default: the one where it runs)')
    .option('--timeout <seconds>', 'kill the command after this long', num('--timeout'))
    .addHelpText(
      'after',
      examples(['ferry exec web -- ls -l /data', 'ferry exec web --host h2 --timeout 30 -- sh -c "df -h /"'], "Exits with the command's exit code (128+N if signal N ended it); Ctrl-C is forwarded."),
    )
    .action(async (container: string, command: string[], o) => {
      const { execCommand } = await import('./commands/exec.js');
      await withRedisOnly('exec', async (c) => setExit(await execCommand(c, { container, argv: command, ...(o.host ? { host: o.host } : {}), ...(o.timeout !== undefined ? { timeoutSec: o.timeout } : {}) })));
    });

  program
    .command('run')
    .usage('[--timeout <seconds>] <host> -- <command> [args...]')
    .description('run a command as root in a fresh throwaway context on a host: its own PID, mount, UTS, IPC and network namespaces and cgroup; the host\'s files with / read-only, a private /tmp')
    .argument('<host>', 'host name, as its worker registered it (ferry hosts)')
    .argument('<command...>', 'the command and its arguments (after --, passed as they are, no shell)')
    .option('--timeout <seconds>', 'kill the command after this long', num('--timeout'))
    .addHelpText(
      'after',
      examples(
        ['ferry run h1 -- ps -e', 'ferry run h2 --timeout 60 -- sh -c "hostname scratch; ip -o link; df -h /tmp"'],
        "Exits with the command's exit code (128+N if signal N ended it, 124 after --timeout, 125 if the context could not be set up); Ctrl-C is forwarded.",
        'Nothing is left behind: every process of the context is killed and its cgroup and mounts removed when it ends.',
      ),
    )
    .action(async (host: string, command: string[], o) => {
      const { runCommand } = await import('./commands/run.js');
      await withRedisOnly('run', async (c) => setExit(await runCommand(c, { host, argv: command, ...(o.timeout !== undefined ? { timeoutSec: o.timeout } : {}) })));
    });

  program
    .command('mount')
    .description('share a host directory with a container: now if it runs, and at every start')
    .argument('<container>', 'container name')
    .argument('<host-dir>', "absolute path of a directory on the host, below one of its worker's mount roots (FERRY_MOUNT_ROOTS, --mount-root; none by default)")
    .argument('<path-in-container>', 'absolute path in the container (created if missing)')
    .option('--ro', 'read-only')
    .option('--host <host>', 'host of the container (default: the one that has it)')
    .option('--json', 'print JSON')
    .addHelpText('after', examples(['ferry mount web /srv/shared /mnt/shared', 'ferry mount web /srv/config /etc/app --ro --host h1']))
    .action(async (container: string, hostDir: string, path: string, o) => {
      const { renderMountChange } = await import('./commands/mount.js');
      await withFerry(async (f) => {
        const m = await f.mount({ container, hostDir, path, readOnly: Boolean(o.ro), ...(o.host ? { host: o.host } : {}) });
        if (o.json) json(m);
        else print(renderMountChange('mount', m));
      });
    });

  program
    .command('umount')
    .description('remove a bind mount from a container: now if it runs, and from its config')
    .argument('<container>', 'container name')
    .argument('<path-in-container>', 'where the directory is mounted in the container')
    .option('--host <host>', 'host of the container (default: the one that has it)')
    .option('--json', 'print JSON')
    .addHelpText('after', examples(['ferry umount web /mnt/shared']))
    .action(async (container: string, path: string, o) => {
      const { renderMountChange } = await import('./commands/mount.js');
      await withFerry(async (f) => {
        const m = await f.umount({ container, path, ...(o.host ? { host: o.host } : {}) });
        if (o.json) json(m);
        else print(renderMountChange('umount', m));
      });
    });

  program
    .command('show')
    .description("a container's state, address and bind mounts, from its host")
    .argument('<container>', 'container name')
    .option('--host <host>', 'host of the container (default: the one that has it)')
    .option('--json', 'print JSON')
    .addHelpText('after', examples(['ferry show web', 'ferry show web --host h2 --json']))
    .action(async (container: string, o) => {
      const { renderDetails } = await import('./commands/mount.js');
      await withFerry(async (f) => {
        const d = await f.show({ container, ...(o.host ? { host: o.host } : {}) });
        if (o.json) json(d);
        else print(renderDetails(d));
      });
    });

  program
    .command('gc')
    .description("remove finished operations, jobs and leftovers from Redis as the retention policy says (the scheduler also does it every 10 min)")
    .option('--dry-run', 'say what would be removed; remove nothing')
    .option('--keep <n>', 'finished operations kept at most (default FERRY_GC_KEEP or 1000)')
    .option('--max-age <duration>', 'finished operations removed once ended this long ago (default FERRY_GC_MAX_AGE or 7d)')
    .option('--min-age <duration>', 'never one that ended more recently (default FERRY_GC_MIN_AGE or 10m)')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExamples:\n  ferry gc --dry-run\n  ferry gc --keep 200 --max-age 2d --json\n\nOperations that have not ended are never removed.')
    .action(async (o) => {
      const { renderGc } = await import('./commands/gc.js');
      await withFerry(async (f) => {
        const r = await f.gc({ dryRun: Boolean(o.dryRun), ...(o.keep !== undefined ? { keep: o.keep } : {}), ...(o.maxAge !== undefined ? { maxAge: o.maxAge } : {}), ...(o.minAge !== undefined ? { minAge: o.minAge } : {}) });
        if (o.json) json(r);
        else print(renderGc(r));
      });
    });

  program
    .command('worker')
    .description("run this host's worker (consumes only this host's queue)")
    .requiredOption('--host <name>', 'stable host id (names the queue)')
    .option('--address <addr>', 'address peers use to reach this host over SSH')
    .option('--ssh-port <port>', 'sshd port peers use', '22')
    .option('--ssh-user <user>', 'user peers log in as', 'root')
    .option('--lxc-path <dir>', 'LXC path of this host', '/var/lib/lxc')
    .option('--ssh-key <file>', 'private key for reaching peers')
    .option('--known-hosts <file>', "known_hosts pinning every peer's host key")
    .option('--state-dir <dir>', "worker's scratch directory")
    .option('--live', 'offer live migration (checkpoint/restore with CRIU) when criu check passes (or FERRY_LIVE=1)')
    .option('--criu <path>', 'the criu binary (default: ferry\'s own build when installed, else criu on PATH)')
    .option('--mount-root <dir>', 'a host dir whose subdirs ferry mount may share (repeatable; or FERRY_MOUNT_ROOTS=a:b; none by default)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--control-key <file>', "the control plane's public key: only jobs it signed run here (or FERRY_CONTROL_PUB; default <state dir>/keys/control.pub)")
    .option('--host-keys <dir>', "where this worker writes its public key as <host>.pub, for the scheduler (or FERRY_HOST_KEYS; default <state dir>/keys/hosts)")
    .option('--metrics <addr:port>', 'serve Prometheus metrics at http://ADDR:PORT/metrics; a bare PORT is 127.0.0.1:PORT (or FERRY_WORKER_METRICS; off by default)')
    .addHelpText(
      'after',
      examples(
        [
          'REDIS_URL=redis://10.0.0.1:6379 ferry worker --host h1 --address 10.0.0.11 --ssh-key /root/.ssh/ferry --known-hosts /etc/ferry/known_hosts',
          'ferry worker --host h2 --address 10.0.0.12 --lxc-path /srv/lxc --live',
          'ferry worker --host h3 --address 10.0.0.13 --metrics 10.0.0.13:9471',
        ],
        'One worker per host; it runs until SIGTERM.',
      ),
    )
    .action(async (o) => {
      const { parseHostConfig, runWorker } = await import('@ferry/worker');
      let cfg;
      try {
        cfg = parseHostConfig(o);
      } catch (e) {
        throw new ExitError(EXIT.badInput, `worker: ${(e as Error).message}`);
      }
      await runWorker(cfg);
    });

  program
    .command('scheduler')
    .description('run the scheduler (plans operations and advances them)')
    .option('--metrics <addr:port>', 'serve Prometheus metrics at http://ADDR:PORT/metrics; a bare PORT is 127.0.0.1:PORT (or FERRY_SCHEDULER_METRICS; off by default)')
    .option('--control-key <file>', 'the control-plane private key, made (0600, with <name>.pub beside it) if missing (or FERRY_CONTROL_KEY; default <state dir>/keys/control.key)')
    .option('--host-keys <dir>', 'trusted host public keys, <host>.pub: results are accepted only so signed (or FERRY_HOST_KEYS; default <state dir>/keys/hosts)')
    .option('--api', "serve ferry's API in this process too, on its Unix socket (see ferry api)")
    .option('--api-listen <addr:port>', "serve ferry's API on TCP too (implies --api; as ferry api --listen)")
    .option('--api-socket <path>', "the API's Unix socket (implies --api; default <state dir>/api/api.sock)")
    .option('--api-tls-cert <file>', 'PEM certificate for the API over HTTPS')
    .option('--api-tls-key <file>', 'PEM private key of --api-tls-cert')
    .addHelpText(
      'after',
      examples(
        ['REDIS_URL=redis://10.0.0.1:6379 ferry scheduler', 'ferry scheduler --metrics 0.0.0.0:9470', 'ferry scheduler --api --api-listen 10.0.0.1:7443 --api-tls-cert /etc/ferry/api.crt --api-tls-key /etc/ferry/api.key'],
        'Any number may run; it runs until SIGTERM.',
      ),
    )
    .action(async (o: { metrics?: string; controlKey?: string; hostKeys?: string; api?: boolean; apiListen?: string; apiSocket?: string; apiTlsCert?: string; apiTlsKey?: string }) => {
      const { parseSchedulerFlags, runScheduler } = await import('@ferry/scheduler');
      const { schedulerApiFlags, startApiFromFlags } = await import('./commands/api.js');
      let opts;
      try {
        opts = parseSchedulerFlags(o);
      } catch (e) {
        throw new ExitError(EXIT.badInput, `scheduler: ${(e as Error).message}`);
      }
      const api = schedulerApiFlags(o);
      // The API signs with the scheduler's key.
      const stopApi = api ? await startApiFromFlags(api, o.controlKey) : undefined;
      try {
        await runScheduler({ ...opts, trust: { ...(o.controlKey ? { controlKey: o.controlKey } : {}), ...(o.hostKeys ? { hostKeys: o.hostKeys } : {}) } });
      } finally {
        await stopApi?.();
      }
    });

  registerInstallCommands(program);
  registerApiCommands(program, withFerry);

  const redis = program
    .command('redis')
    .description("ferry's embedded redis-server (used when REDIS_URL is unset)")
    .addHelpText('after', examples(['ferry redis stop']));
  redis
    .command('stop')
    .description('stop the embedded redis-server')
    .addHelpText('after', examples(['ferry redis stop']))
    .action(async () => {
      const { stopEmbeddedRedis } = await import('@ferry/infra');
      print((await stopEmbeddedRedis()) ? 'stopped' : 'not running');
    });

  program
    .command('lab')
    .description('a lab of hosts on this machine: network namespaces with sshd, LXC and a worker each (up, down, container create)')
    .usage('up [--hosts N] [--live] [--json] | down | container create <name> --host <h> [--size-mb N] [--writer] [--memory-mb N] [--cpu-milli N] [--json]')
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .argument('[args...]', 'the lab command and its options (`ferry lab --help` lists them)')
    .action(async (args: string[]) => {
      const { runLab } = await import('./lab.js');
      setExit(await runLab(args));
    });

  return program;
}

async function main(argv: string[]): Promise<number> {
  let code = 0;
  const program = buildProgram((c) => {
    code = c;
  });
  return exitCodeOfRun('ferry', async () => {
    await program.parseAsync(argv);
    return code;
  });
}

process.exit(await main(process.argv));
