import { setTimeout as sleep } from 'node:timers/promises';
import { PreconditionError, type ArpRefreshInput, type ArpRefreshOutput } from '@ferry/core';
import type { Step, StepContext } from '../context.js';
import { announce } from '../net/gratuitous-arp.js';

/**
 * Target (or source on rollback): tells the segment where the container's address lives now, with
 * gratuitous ARP sent from inside the container's network namespace.
 * Observe: the container must run here; the device is the one holding the address in its netns.
 * Act: one packet, then the step ends; `count - 1` more follow `intervalMs` apart (in the
 * background). Sending again is harmless.
 */
export const arpRefresh: Step<ArpRefreshInput, ArpRefreshOutput> = async (ctx, input) => {
  const i = await ctx.runtime.info(input.container);
  if (!i || i.state !== 'RUNNING' || i.pid === undefined) {
    throw new PreconditionError('CONTAINER_NOT_RUNNING', `container ${input.container} is not running on ${ctx.host.name}`);
  }
  if (input.ip === undefined) {
    ctx.log.info('no IPv4 address known for the container: nothing to announce');
    return { sent: 0, device: '', skipped: 'no IPv4 address known for the container' };
  }
  // The first packet is what moves the traffic (the client's downtime ends with it): the step ends
  // once it is out. The others only cover a lost frame; waiting for them added `intervalMs` ×
  // (count - 1) to every operation's total, so the worker sends them after it, on its own.
  const { sent, device } = await announce(i.pid, input.ip, 1, 0, ctx.signal);
  const following = input.count - 1;
  ctx.log.info({ sent, device, ip: input.ip, following }, 'gratuitous ARP sent');
  if (following > 0) void follow(ctx, input.container, i.pid, input.ip, following, input.intervalMs);
  return { sent, ...(following > 0 ? { following } : {}), device };
};

/**
 * The following packets, each only while the container still runs here as the same process: one
 * stopped (moved on, rolled back) meanwhile, or a pid taken by another, ends them.
 */
async function follow(ctx: StepContext, container: string, pid: number, ip: string, count: number, intervalMs: number): Promise<void> {
  let sent = 0;
  try {
    for (let n = 0; n < count; n++) {
      await sleep(intervalMs, undefined, { signal: ctx.signal });
      const now = await ctx.runtime.info(container);
      if (now?.state !== 'RUNNING' || now.pid !== pid) {
        ctx.log.info({ ip, sent }, 'gratuitous ARP: the container no longer runs here as it did; the following packets end');
        return;
      }
      sent += (await announce(pid, ip, 1, 0, ctx.signal)).sent;
    }
    ctx.log.info({ ip, sent }, 'gratuitous ARP: the following packets sent');
  } catch (err) {
    ctx.log.warn({ err, ip, sent }, 'gratuitous ARP: the following packets not all sent (the first was)');
  }
}
