import { setTimeout as sleep } from 'node:timers/promises';
import { FerryError, PreconditionError, type ArpRefreshInput, type ArpRefreshOutput } from '@ferry/core';
import { run } from '@ferry/infra';
import type { Step } from '../context.js';

/** The interface holding `ip` in `ip -o -4 addr show` output (`2: eth0    inet 198.18.0.5/24 ...`). */
export function deviceHolding(ipAddrOutput: string, ip: string): string | undefined {
  for (const line of ipAddrOutput.split('\n')) {
    const m = /^\d+:\s+(\S+)\s+inet\s+([\d.]+)\//.exec(line.trim());
    if (m && m[2] === ip) return m[1]!.split('@')[0];
  }
  return undefined;
}

/**
 * Target (or source on rollback): tells the segment where the container's address lives now, with
 * gratuitous ARP sent from inside the container's network namespace (host's arping via nsenter -n).
 * Observe: the container must run here; the device is the one holding the address in its netns.
 * Act: `count` packets, `intervalMs` apart. Sending again is harmless.
 */
export const arpRefresh: Step<ArpRefreshInput, ArpRefreshOutput> = async (ctx, input) => {
  const i = await ctx.runtime.info(input.container);
  if (!i || i.state !== 'RUNNING' || i.pid === undefined) {
    throw new PreconditionError('CONTAINER_NOT_RUNNING', `container ${input.container} is not running on ${ctx.host.name}`);
  }
  const pid = String(i.pid);
  const addrs = await run('nsenter', ['-t', pid, '-n', 'ip', '-o', '-4', 'addr', 'show'], { timeoutMs: 10_000 });
  const device = deviceHolding(addrs.stdout, input.ip);
  if (!device) {
    throw new FerryError('ARP_DEVICE_NOT_FOUND', `no interface holds ${input.ip} inside ${input.container}`, {
      retryable: true,
      details: { addresses: addrs.stdout },
    });
  }
  // arping sends its packet at once and then waits ~1 s for replies that never come for -U:
  // start one per packet, `intervalMs` apart, without waiting for the previous one to exit.
  const sends: Promise<unknown>[] = [];
  for (let n = 0; n < input.count; n++) {
    if (n > 0 && input.intervalMs > 0) await sleep(input.intervalMs, undefined, { signal: ctx.signal });
    sends.push(run('nsenter', ['-t', pid, '-n', 'arping', '-U', '-c', '1', '-I', device, input.ip], { timeoutMs: 10_000 }));
  }
  const results = await Promise.allSettled(sends);
  const sent = results.filter((r) => r.status === 'fulfilled').length;
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (sent === 0 && failed) throw failed.reason;
  ctx.log.info({ sent, device, ip: input.ip }, 'gratuitous ARP sent');
  return { sent, device };
};
