import type { Logger } from 'pino';
import type { HostInfo } from '@ferry/core';
import type { HostConfig } from './config.js';
import type { Runtime } from './runtime/runtime.js';

export interface Progress {
  /** e.g. 'precopy', 'final-sync' */
  stage: string;
  pass?: number;
  bytes?: number;
  totalBytes?: number;
  percent?: number;
  rate?: string;
  message?: string;
}

/** Everything a step may use. Steps do all their I/O through these. */
export interface StepContext {
  host: HostConfig;
  runtime: Runtime;
  log: Logger;
  /** Reports progress (shown by `ferry watch`); cheap, may be called often. */
  progress(p: Progress): void;
  /** Registry entry of another host, as its worker last published it. */
  peerInfo(name: string): Promise<HostInfo | null>;
  /** Aborted when the worker shuts down: long steps stop and let the job be retried. */
  signal: AbortSignal;
}

export type Step<I, O> = (ctx: StepContext, input: I) => Promise<O>;
