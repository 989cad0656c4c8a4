import type { ContentStore } from './content-store.js';
import type { UnifyReport } from './report.js';

/** What every part of one unify run shares. */
export interface RunCtx {
  store: ContentStore;
  dryRun: boolean;
  /** Absolute rootfs paths, in the caller's order (files refer to them by index). */
  rootfs: readonly string[];
  report: UnifyReport;
  /** Id of this run: in journal records and temporary names. */
  run: string;
  signal?: AbortSignal;
}
