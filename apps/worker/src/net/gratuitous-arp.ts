import { setTimeout as sleep } from 'node:timers/promises';
import { FerryError } from '@ferry/core';
import { run } from '@ferry/infra';

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
  // arping sends its packet at once and then waits ~1 s for replies that never come for -U:
  // start one per packet, `intervalMs` apart, without waiting for the previous one to exit.
  const sends: Promise<unknown>[] = [];
  for (let n = 0; n < count; n++) {
    if (n > 0 && intervalMs > 0) await sleep(intervalMs, undefined, signal ? { signal } : {});
    sends.push(run('nsenter', ['-t', String(pid), '-n', 'arping', '-U', '-c', '1', '-I', device, ip], { timeoutMs: 10_000 }));
  }
  const results = await Promise.allSettled(sends);
  const sent = results.filter((r) => r.status === 'fulfilled').length;
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (sent === 0 && failed) throw failed.reason;
  return { sent, device };
}
