import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { FerryError } from '@ferry/core';
import { isAlive, procId, type ProcId, run } from '@ferry/infra';
import { hostRun } from './hostenv.js';
import { SSH_PORT, type Layout } from './paths.js';
import type { LabHost } from './types.js';

/** One sshd per lab host, in the host's namespace, with its own key and config; keys pinned. */

export async function generateKey(file: string, comment: string): Promise<string> {
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file], { timeoutMs: 10_000 });
  return (await readFile(`${file}.pub`, 'utf8')).trim();
}

function sshdConfig(host: LabHost, lab: Layout): string {
  const h = lab.host(host.name);
  return [
    `ListenAddress ${host.address}`,
    `Port ${host.sshPort}`,
    'AddressFamily inet',
    `HostKey ${h.hostKey}`,
    `AuthorizedKeysFile ${lab.authorizedKeys}`,
    `PidFile ${h.sshdPid}`,
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PubkeyAuthentication yes',
    'PermitRootLogin prohibit-password',
    'UsePAM no',
    // The lab dir may sit under a group-writable parent (e.g. a temp dir).
    'StrictModes no',
    'UseDNS no',
    'PrintMotd no',
    // Workers open several rsync/ssh sessions at once; the default 10:30:100 drops some.
    'MaxStartups 100',
    'MaxSessions 100',
    'Subsystem sftp internal-sftp',
    // bash sources ~/.bashrc for every command run over ssh unless its shell level says it is
    // nested: root's interactive rc here (pyenv init) cost 0.7 s per rsync and remote check.
    'SetEnv SHLVL=1',
    '',
  ].join('\n');
}

/** Writes the host's config and key; returns its known_hosts line (pinned by address). */
export async function prepareSshd(host: LabHost, lab: Layout): Promise<string> {
  const h = lab.host(host.name);
  await mkdir(h.dir, { recursive: true });
  const pub = await generateKey(h.hostKey, `ferry-lab-${host.name}`);
  await writeFile(h.sshdConfig, sshdConfig(host, lab));
  const [type, key] = pub.split(' ');
  const addr = host.sshPort === SSH_PORT ? host.address : `[${host.address}]:${host.sshPort}`;
  return `${addr} ${type} ${key}`;
}

export async function sshdProc(host: LabHost, lab: Layout): Promise<ProcId | null> {
  const pid = Number((await readFile(lab.host(host.name).sshdPid, 'utf8').catch(() => '')).trim());
  if (!pid) return null;
  const id = await procId(pid);
  return id && (await isAlive(id)) ? id : null;
}

export async function startSshd(host: LabHost, lab: Layout): Promise<void> {
  const h = lab.host(host.name);
  await mkdir('/run/sshd', { recursive: true }); // privilege-separation dir sshd insists on
  // sshd daemonises itself; it writes its PidFile only once it listens, so that is the readiness signal.
  await hostRun(host, '/usr/sbin/sshd', ['-f', h.sshdConfig, '-E', h.sshdLog], { timeoutMs: 10_000 });
  const deadline = Date.now() + 5000;
  while (!(await sshdProc(host, lab))) {
    if (Date.now() > deadline) {
      const log = await readFile(h.sshdLog, 'utf8').catch(() => '');
      throw new FerryError('LAB_SSHD_FAILED', `sshd of ${host.name} did not start: ${log.trim().slice(-500)}`);
    }
    await sleep(10);
  }
}

/** The ssh options a lab host uses to reach another: pinned key, never trust-on-first-use. */
export function sshArgs(lab: Layout, to: LabHost): string[] {
  return [
    '-F', '/dev/null',
    '-i', lab.sshKey,
    '-o', 'IdentitiesOnly=yes',
    '-o', `UserKnownHostsFile=${lab.knownHosts}`,
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'StrictHostKeyChecking=yes',
    '-o', 'BatchMode=yes',
    '-o', 'ConnectTimeout=5',
    '-p', String(to.sshPort),
    `root@${to.address}`,
  ];
}

/** Proves `from` reaches `to` over ssh with the lab's key and pinned host key. */
export async function checkSsh(lab: Layout, from: LabHost, to: LabHost): Promise<void> {
  try {
    await hostRun(from, 'ssh', [...sshArgs(lab, to), 'true'], { timeoutMs: 15_000 });
  } catch (e) {
    throw new FerryError('LAB_SSH_FAILED', `ssh from ${from.name} to ${to.name} failed: ${(e as Error).message}`, { cause: e });
  }
}
