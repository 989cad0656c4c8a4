import { z } from 'zod';
import { Ipv4 } from '../names.js';
import { StepBase } from './common.js';

export const ArpRefreshInput = StepBase.extend({
  ip: Ipv4,
  /** How many gratuitous ARP packets, and how far apart. */
  count: z.int().min(1).max(20).default(3),
  intervalMs: z.int().min(0).max(5000).default(200),
});
export type ArpRefreshInput = z.infer<typeof ArpRefreshInput>;

export const ArpRefreshOutput = z.object({ sent: z.int().nonnegative(), device: z.string() });
export type ArpRefreshOutput = z.infer<typeof ArpRefreshOutput>;
