import { z } from 'zod';
import { Ipv4 } from '../names.js';
import { StepBase } from './common.js';

export const ArpRefreshInput = StepBase.extend({
  /** The container's IPv4 address; none (no static address known) means nothing to announce. */
  ip: Ipv4.optional(),
  /** How many gratuitous ARP packets, and how far apart. */
  count: z.int().min(1).max(20).default(3),
  intervalMs: z.int().min(0).max(5000).default(200),
});
export type ArpRefreshInput = z.infer<typeof ArpRefreshInput>;

export const ArpRefreshOutput = z.object({
  /** Packets sent before the step ended (the first; the operation goes on from there). */
  sent: z.int().nonnegative(),
  /** Packets still to follow, `intervalMs` apart, sent by the worker in the background. */
  following: z.int().nonnegative().optional(),
  device: z.string(),
  /** Why nothing was sent, when nothing was. */
  skipped: z.string().optional(),
});
export type ArpRefreshOutput = z.infer<typeof ArpRefreshOutput>;
