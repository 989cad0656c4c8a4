import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { examples, json, print } from '../entry.js';
import { INSTALL_DEFAULTS } from '../install/defaults.js';
import type { Install, RawInstall } from '../install/options.js';
import type { Written } from '../install/write-files.js';

const repeat = (v: string, prev: string[] = []) => [...prev, v];
const VERB: Record<Written['action'], [now: string, dry: string]> = {
  create: ['created', 'would create'],
  replace: ['replaced', 'would replace'],
  chmod: ['mode set', 'would set mode'],
  unchanged: ['unchanged', 'unchanged'],
  conflict: ['differs', 'differs (needs --force)'],
};

/** Writes (or, dry, prints) what one component needs on this host, then says what to run. */
async function install(i: Install, asJson: boolean): Promise<void> {
  // Loaded here, not with the command line: --help stays quick (the checks use @ferry/infra's).
  const [{ installPlan }, { writePlan, conflictError }] = await Promise.all([import('../install/plan.js'), import('../install/write-files.js')]);
  const plan = installPlan(i);
  const written = await writePlan(i.prefix, plan.files, { dryRun: i.dryRun, force: i.force });
  const notes = [...plan.notes];
  if (!existsSync(i.ferryBin)) notes.unshift(`${i.ferryBin} does not exist on this machine: run scripts/setup.sh (it links ferry there), or give --ferry-bin`);
  // A dry run shows everything, conflicts included, and then fails as the real run would.
  const conflicts = written.filter((w) => w.action === 'conflict').map((w) => w.at);
  if (asJson) {
    json({ component: i.component, prefix: i.prefix, dryRun: i.dryRun, files: written, next: plan.next, notes });
    if (conflicts.length) throw conflictError(conflicts);
    return;
  }
  const shown = new Map(plan.files.map((f) => [f.path, f.shown ?? f.content]));
  for (const w of written) {
    if (i.dryRun && shown.get(w.path) !== undefined && w.action !== 'unchanged') {
      print(`--- ${w.at} (${w.mode}, ${VERB[w.action][1]})`);
      process.stdout.write(shown.get(w.path)!);
    } else print(`${VERB[w.action][i.dryRun ? 1 : 0].padEnd(14)} ${w.at} (${w.mode})`);
  }
  if (i.dryRun) print('dry run: nothing written');
  print(`\nthen:\n${plan.next.map((n) => `  ${n}`).join('\n')}`);
  if (notes.length) print(`\nnotes:\n${notes.map((n) => `  - ${n}`).join('\n')}`);
  if (conflicts.length) throw conflictError(conflicts);
}

const common = (c: Command) =>
  c
    .option('--state-dir <dir>', `ferry's state dir, FERRY_STATE_DIR (default ${INSTALL_DEFAULTS.stateDir})`)
    .option('--metrics <addr:port>', 'serve Prometheus metrics there (off by default; a bare PORT is 127.0.0.1:PORT)')
    .option('--ferry-bin <path>', `the ferry the unit runs (default ${INSTALL_DEFAULTS.ferryBin}, the link scripts/setup.sh makes)`)
    .option('--prefix <dir>', 'write below this directory instead of / (to look, package or test)', '/')
    .option('--dry-run', 'print what would be written; write nothing')
    .option('--force', 'replace files that exist with other content (else: refused, nothing written)')
    .option('--json', 'print JSON');

/** `ferry install worker|scheduler`: systemd units, environment files and Redis's configuration for real hosts. */
export function registerInstallCommands(program: Command): void {
  const cmd = program
    .command('install')
    .description('write the systemd units, environment files and Redis configuration that run ferry on a real host')
    .addHelpText('after', examples(['ferry install scheduler --dry-run', 'ferry install worker --host h1 --address 10.0.0.11 --redis-url redis://:PASSWORD@10.0.0.1:6380']));

  common(
    cmd
      .command('worker')
      .description("this host's worker: ferry-worker.service and /etc/ferry/worker.env")
      .option('--host <name>', 'stable host id (names its queue); required')
      .option('--address <addr>', 'address peers reach this host at over SSH; required')
      .option('--redis-url <url>', `the scheduler's Redis, also redis+sentinel://… or redis+cluster://… (default unix://${INSTALL_DEFAULTS.redisSocket}: the scheduler's host only)`)
      .option('--lxc-path <dir>', `LXC path of this host (default ${INSTALL_DEFAULTS.lxcPath})`)
      .option('--ssh-key <file>', 'private key for reaching peers (default /root/.ssh/id_ed25519)')
      .option('--known-hosts <file>', "known_hosts pinning every peer's host key (default /root/.ssh/known_hosts)")
      .option('--ssh-port <port>', 'sshd port peers use (default 22)')
      .option('--ssh-user <user>', 'user peers log in as (default root)')
      .option('--live', 'offer live migration (CRIU) when criu check passes')
      .option('--criu <path>', 'the criu binary')
      .option('--mount-root <dir>', 'a host dir whose subdirs ferry mount may share (repeatable)', repeat)
      .option('--control-key <file>', "the control plane's public key (default <state dir>/keys/control.pub)")
      .option('--host-keys <dir>', 'where the worker writes its public key, <host>.pub (default <state dir>/keys/hosts)'),
  )
    .addHelpText(
      'after',
      examples(
        [
          'ferry install worker --host h1 --address 10.0.0.11 --dry-run',
          "ferry install worker --host h2 --address 10.0.0.12 --redis-url 'redis://:PASSWORD@10.0.0.1:6380' --metrics 10.0.0.12:9471 --live",
          'ferry install worker --host h1 --address 10.0.0.11 --prefix /tmp/ferry-root --json',
        ],
        'Writes /etc/systemd/system/ferry-worker.service and /etc/ferry/worker.env (0600); idempotent.',
        'Exit codes: 0 written (or unchanged), 1 a file exists with other content (INSTALL_CONFLICT; nothing written), 2 bad input.',
      ),
    )
    .action(async (o: RawInstall) => install(await (await import('../install/options.js')).parseWorkerInstall(o), Boolean(o.json)));

  common(
    cmd
      .command('scheduler')
      .description("the scheduler and, unless --redis-url, ferry's Redis on this host (Debian's redis-server@ferry)")
      .option('--redis-url <url>', 'use this Redis (also redis+sentinel://… or redis+cluster://…) instead of configuring one here')
      .option('--redis-bind <addr>', 'Redis also listens on this address, for workers on other hosts (repeatable; needs --redis-password-file)', repeat)
      .option('--redis-port <port>', `Redis's TCP port (default ${INSTALL_DEFAULTS.redisPort}; Debian's redis-server keeps 6379)`)
      .option('--redis-password-file <file>', "Redis's password (requirepass), the file's first line")
      .option('--redis-maxmemory <size>', `Redis's memory cap; writes are refused past it, never keys evicted (default ${INSTALL_DEFAULTS.redisMaxmemory})`)
      .option('--control-key <file>', "the control plane's private key, made on first start (default <state dir>/keys/control.key)")
      .option('--host-keys <dir>', "the trusted hosts' public keys (default <state dir>/keys/hosts)"),
  )
    .addHelpText(
      'after',
      examples(
        [
          'ferry install scheduler --dry-run',
          'ferry install scheduler --redis-bind 10.0.0.1 --redis-password-file /root/redis.pass --metrics 10.0.0.1:9470',
          'ferry install scheduler --redis-url redis://:PASSWORD@redis.example:6379 --json',
        ],
        'Writes /etc/systemd/system/ferry-scheduler.service, /etc/ferry/scheduler.env (0600) and /etc/redis/redis-ferry.conf (0640, group redis); idempotent.',
        'Exit codes: 0 written (or unchanged), 1 a file exists with other content (INSTALL_CONFLICT; nothing written), 2 bad input.',
      ),
    )
    .action(async (o: RawInstall) => install((await import('../install/options.js')).parseSchedulerInstall(o), Boolean(o.json)));
}
