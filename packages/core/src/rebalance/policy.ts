import { z } from 'zod';

/** How rebalancing decides; settings live in Redis and are read through this schema. */
export const RebalancePolicy = z.object({
  /** Weight of CPU against memory in a host's utilization (memory gets 1 - this). */
  cpuWeight: z.number().min(0).max(1).default(0.5),
  /** Act only when the hottest host is this far above the mean utilization (0.1 = 10 points). */
  threshold: z.number().min(0).max(1).default(0.1),
  /** A move must take at least this much utilization above the mean off its source (against noise). */
  minGain: z.number().min(0).max(1).default(0.01),
  /** A target must stay under this utilization of CPU and of memory after the move. */
  highWater: z.number().gt(0).max(1).default(0.85),
  /** Most moves in one round, and most moves touching one host in one round. */
  maxMoves: z.int().min(0).default(5),
  maxMovesPerHost: z.int().min(1).default(1),
  /** A container moved (or whose move failed) is left alone this long. */
  cooldownMs: z.int().min(0).default(30 * 60_000),
  /** Moves that restart the container (no live migration between the two hosts) are allowed. */
  allowRestart: z.boolean().default(false),
});
export type RebalancePolicy = z.infer<typeof RebalancePolicy>;
export type RebalancePolicyInput = z.input<typeof RebalancePolicy>;
