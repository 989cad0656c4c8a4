import { PreconditionError, type ArpRefreshInput, type ArpRefreshOutput } from '@ferry/core';
import type { Step } from '../context.js';
import { announce } from '../net/gratuitous-arp.js';

/**
 * Target (or source on rollback): tells the segment where the container's address lives now, with
 * gratuitous ARP sent from inside the container's network namespace.
 * Observe: the container must run here; the device is the one holding the address in its netns.
 * Act: `count` packets, `intervalMs` apart. Sending again is harmless.
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
  const { sent, device } = await announce(i.pid, input.ip, input.count, input.intervalMs, ctx.signal);
  ctx.log.info({ sent, device, ip: input.ip }, 'gratuitous ARP sent');
  return { sent, device };
};
