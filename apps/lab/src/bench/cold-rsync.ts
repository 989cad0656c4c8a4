import { hostExec, type LabInfo } from '../lab/index.js';

/** One plain cold copy: what a person would run by hand, the floor every migration is compared with. */
export interface ColdCopy {
  ms: number;
  /** What rsync says it sent (`--stats`: "Total bytes sent"). */
  bytesSent: number | null;
}

/**
 * One plain `rsync -aHAX --numeric-ids` of `srcDir` on h1 to an empty dir on h2, over ssh as ferry
 * uses it (the lab's key and pinned host keys); the copy is deleted afterwards.
 */
export async function coldRsync(lab: LabInfo, srcDir: string, tag: string): Promise<ColdCopy> {
  const [, h2] = lab.hosts;
  const dest = `${h2!.lxcPath}/.bench-cold-${tag}`;
  const ssh = `ssh -i ${lab.sshKey} -p ${h2!.sshPort} -o UserKnownHostsFile=${lab.knownHosts} -o StrictHostKeyChecking=yes -o BatchMode=yes`;
  // Both copies start with nothing left to write back (the container just made on h1, this copy's
  // removal on h2): neither pays for the other's writeback.
  const settle = () => Promise.all([hostExec('h1', ['sync', '-f', srcDir], { timeoutMs: 600_000 }), hostExec('h2', ['sync', '-f', h2!.lxcPath], { timeoutMs: 600_000 })]);
  await settle();
  const t0 = Date.now();
  // Exit 24: files vanished under a running writer, as in any copy of a live tree.
  const r = await hostExec('h1', ['rsync', '-aHAX', '--numeric-ids', '--stats', '-e', ssh, `${srcDir}/`, `root@${h2!.address}:${dest}/`], {
    timeoutMs: 3_600_000,
    okExitCodes: [0, 24],
  });
  const ms = Date.now() - t0;
  // A million small files take longer to delete than 10 min here (the bound that cut the first
  // 1,000,000-file run short): as long as the copy itself may take.
  await hostExec('h2', ['rm', '-rf', dest], { timeoutMs: 3_600_000 });
  await settle(); // what the caller runs next starts as the copy did
  const sent = /^Total bytes sent: ([\d,.]+)/m.exec(r.stdout);
  return { ms, bytesSent: sent ? Number(sent[1]!.replace(/[,.]/g, '')) : null };
}
