#!/usr/bin/env node
// Manual smoke run of the lab against the compiled CLI (npm run build first; needs root):
//   node test/lab/smoke.mjs [--size-mb N]
// Brings a 2-host lab up without services, makes a container with data and a writer, checks HTTP
// from the client, ssh h1 -> h2 with pinned keys, freeze/unfreeze, then removes everything and
// checks nothing is left. Uses a private state dir unless FERRY_STATE_DIR is set.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { run } from '@ferry/infra';
import * as lab from '@ferry/lab'; // the compiled package (apps/lab/dist)

const { values } = parseArgs({ options: { 'size-mb': { type: 'string', default: '32' } } });
const own = !process.env.FERRY_STATE_DIR;
if (own) process.env.FERRY_STATE_DIR = mkdtempSync(join(tmpdir(), 'ferry-smoke-'));
const timed = async (what, fn) => {
  const t = Date.now();
  const r = await fn();
  console.log(`${what}: ${Date.now() - t} ms`);
  return r;
};

try {
  const info = await timed('lab up (2 hosts)', () => lab.labUp({ hosts: 2, startServices: false }));
  const ct = await timed(`container create (${values['size-mb']} MiB, writer)`, () =>
    lab.labContainerCreate({ name: 'smoke', host: 'h1', sizeMb: Number(values['size-mb']), writer: true }),
  );
  console.log('container', ct);
  console.log('client GET:', (await lab.clientExec(['busybox', 'wget', '-q', '-O', '-', `http://${ct.ip}/`])).stdout.trim());
  const ssh = await lab.hostExec('h1', ['ssh', '-F', '/dev/null', '-i', info.sshKey, '-o', `UserKnownHostsFile=${info.knownHosts}`,
    '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', `root@${info.hosts[1].address}`, 'ip -br -4 addr show br0']);
  console.log('ssh h1 -> h2:', ssh.stdout.trim());
  const counter = () => readFileSync(join(ct.rootfs, 'data/churn/counter'), 'utf8').trim();
  await lab.hostExec('h1', ['lxc-freeze', '-P', ct.lxcPath, '-n', ct.name]);
  const state = (await lab.hostExec('h1', ['lxc-info', '-P', ct.lxcPath, '-n', ct.name, '-sH'])).stdout.trim();
  const c1 = counter();
  await new Promise((r) => setTimeout(r, 500));
  console.log(`frozen: state ${state}, counter ${c1} -> ${counter()}`);
  await lab.hostExec('h1', ['lxc-unfreeze', '-P', ct.lxcPath, '-n', ct.name]);
  await new Promise((r) => setTimeout(r, 500));
  console.log(`thawed: counter ${counter()}`);
} finally {
  await timed('lab down', () => lab.labDown());
  const netns = (await run('ip', ['netns', 'list'])).stdout.split('\n').filter((l) => l.startsWith('ferry-'));
  const links = (await run('ip', ['-br', 'link'])).stdout.split('\n').filter((l) => /^(fy|ferrysw0)/.test(l));
  console.log('left after down:', { netns, links });
  if (own) rmSync(process.env.FERRY_STATE_DIR, { recursive: true, force: true });
}
