import { setTimeout as sleep } from 'node:timers/promises';
import { FerryError } from '@ferry/core';
import { run, signal as killProcess } from '@ferry/infra';

/** The interface holding `ip` in `ip -o -4 addr show` output (`2: eth0    inet 198.18.0.5/24 ...`). */
export function deviceHolding(ipAddrOutput: string, ip: string): string | undefined {
  for (const line of ipAddrOutput.split('\n')) {
    const m = /^\d+:\s+(\S+)\s+inet\s+([\d.]+)\//.exec(line.trim());
    if (m && m[2] === ip) return m[1]!.split('@')[0];
  }
  return undefined;
}

/**
 * Tells the segment where `ip` lives now: gratuitous ARP sent from inside the network namespace
 * of `pid` (the host's arping via nsenter -n), `count` packets `intervalMs` apart. Until a switch
 * hears from the container's MAC at its new port, frames for it still go to the old one.
 * Resolves with the packets sent and the device; throws when none was sent.
 */
export async function announce(pid: number, ip: string, count: number, intervalMs: number, signal?: AbortSignal): Promise<{ sent: number; device: string }> {
  const addrs = await run('nsenter', ['-t', String(pid), '-n', 'ip', '-o', '-4', 'addr', 'show'], { timeoutMs: 10_000 });
  const device = deviceHolding(addrs.stdout, ip);
  if (!device) {
    throw new FerryError('ARP_DEVICE_NOT_FOUND', `no interface holds ${ip} in the network namespace of pid ${pid}`, {
      retryable: true,
      details: { addresses: addrs.stdout },
    });
  }
  // One arping per packet, `intervalMs` apart, without waiting for the previous one to end.
  const sends: Promise<number>[] = [];
  for (let n = 0; n < count; n++) {
    if (n > 0 && intervalMs > 0) await sleep(intervalMs, undefined, signal ? { signal } : {});
    // A cut that came before arping could send (or report) is tried once more, uncut.
    const send = sendOne(pid, device, ip).catch(() => 0).then((k) => (k > 0 ? k : sendOne(pid, device, ip, false)));
    send.catch(() => undefined); // settled below; not unhandled if the wait above is cut short
    sends.push(send);
  }
  const results = await Promise.allSettled(sends);
  const sent = results.reduce((a, r) => a + (r.status === 'fulfilled' ? r.value : 0), 0);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (sent === 0) throw failed?.reason ?? new FerryError('ARP_NOT_SENT', `arping sent no packet for ${ip} on ${device}`, { retryable: true });
  return { sent, device };
}

/** arping is set up and has sent well within this (it takes a few ms); a cut too early shows as 0 sent. */
const CUT_AFTER_MS = 100;

/**
 * One gratuitous ARP; returns how many packets arping says it sent ("Sent N probes"). arping -U
 * sends at once and then waits a second for replies that never come; told SIGTERM, it reports
 * what it sent and exits 0 (`cut`). (Its greeting cannot tell when: stdout to a pipe is buffered.)
 */
async function sendOne(pid: number, device: string, ip: string, cut = true): Promise<number> {
  let child: number | undefined;
  let ended = false;
  const done = run('nsenter', ['-t', String(pid), '-n', 'arping', '-U', '-c', '1', '-I', device, ip], {
    timeoutMs: 10_000,
    onSpawn: (p) => (child = p),
  }).finally(() => (ended = true));
  if (cut) {
    await Promise.race([sleep(CUT_AFTER_MS), done.catch(() => undefined)]);
    if (!ended && child !== undefined) killProcess(child, 'SIGTERM');
  }
  const r = await done;
  const m = /Sent (\d+) probe/.exec(r.stdout);
  return m ? Number(m[1]) : 0;
}
