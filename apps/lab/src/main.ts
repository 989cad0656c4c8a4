#!/usr/bin/env node
/**
 * The lab's commands: `ferry lab up | down | container create`. The `ferry` CLI's `lab` command runs
 * this file with the arguments after `lab` (the CLI carries none of the lab); `ferry-lab` is the
 * same without it.
 */
import { Command } from 'commander';
import { EXIT, exitCodeOfRun, json, num, print } from '@ferry/cli';
import { labContainerCreate, labDown, labUp } from './lab/index.js';

/** `--help`'s closing lines, as the `ferry` CLI's. */
const examples = (lines: string[]) => `\nExamples:\n${lines.map((l) => `  ${l}`).join('\n')}`;

function buildProgram(): Command {
  const lab = new Command('ferry lab')
    .description('a lab of hosts on this machine: network namespaces with sshd, LXC and a worker each')
    .showHelpAfterError()
    .exitOverride()
    .addHelpText('after', examples(['ferry lab up', 'ferry lab up --hosts 3 --live', 'ferry lab container create web --host h1 --size-mb 64 --writer', 'ferry lab down']));
  lab
    .command('up')
    .description('bring up the lab (hosts, a client namespace, redis, scheduler, workers)')
    .option('--hosts <n>', 'number of hosts', num('--hosts'), 2)
    .option('--live', 'workers offer live migration (checkpoint/restore with CRIU, where it works)')
    .option('--no-live', 'workers offer restart mode only (restarts the workers of a live lab)')
    .option('--json', 'print JSON')
    .addHelpText('after', examples(['ferry lab up', 'ferry lab up --hosts 3 --live --json']))
    .action(async (o) => {
      const info = await labUp({ hosts: o.hosts, ...(o.live !== undefined ? { live: o.live } : {}) });
      if (o.json) json(info);
      else for (const h of info.hosts) print(`${h.name}  ${h.address}  netns ${h.netns}  lxc ${h.lxcPath}`);
    });
  lab
    .command('down')
    .description('remove everything the lab made')
    .addHelpText('after', examples(['ferry lab down']))
    .action(async () => {
      await labDown();
    });
  lab
    .command('container')
    .description('lab containers')
    .addHelpText('after', examples(['ferry lab container create web --host h1']))
    .command('create')
    .description('create and start a busybox container with a static IP and an HTTP server')
    .argument('<name>', 'container name')
    .requiredOption('--host <host>', 'lab host')
    .option('--size-mb <n>', 'MiB of data under /data/bulk', num('--size-mb'), 0)
    .option('--writer', 'run a writer that keeps changing a few files')
    .option('--memory-mb <n>', 'run ferry-memsvc holding n MiB: state only in memory (:8080 counter, :9000 echo)', num('--memory-mb'))
    .option('--cpu-milli <n>', 'burn n thousandths of a core (a busy loop held to it by its CPU quota)', num('--cpu-milli'))
    .option('--json', 'print JSON')
    .addHelpText('after', examples(['ferry lab container create web --host h1', 'ferry lab container create web --host h1 --size-mb 256 --writer', 'ferry lab container create svc --host h1 --memory-mb 64 --json', 'ferry lab container create hot --host h1 --cpu-milli 400']))
    .action(async (name: string, o) => {
      const ct = await labContainerCreate({ name, host: o.host, sizeMb: o.sizeMb, writer: Boolean(o.writer), ...(o.memoryMb !== undefined ? { memoryMb: o.memoryMb } : {}), ...(o.cpuMilli !== undefined ? { cpuMilli: o.cpuMilli } : {}) });
      if (o.json) json(ct);
      else print(`${ct.name} on ${ct.host}: ${ct.ip} ${ct.mac} rootfs ${ct.rootfs}`);
    });
  return lab;
}

/** Exit codes as the `ferry` CLI's: 0 done, 1 failed, 2 bad input. */
function main(args: string[]): Promise<number> {
  return exitCodeOfRun('ferry lab', async () => {
    await buildProgram().parseAsync(args, { from: 'user' });
    return EXIT.ok;
  });
}

process.exit(await main(process.argv.slice(2)));
