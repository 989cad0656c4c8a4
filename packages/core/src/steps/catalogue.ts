import { z } from 'zod';
import { PreflightInput, PreflightOutput } from './preflight.js';
import { RsyncTransferInput, RsyncTransferOutput } from './rsync-transfer.js';
import { CheckpointInput, CheckpointOutput } from './checkpoint.js';
import { RestoreInput, RestoreOutput } from './restore.js';
import { ArpRefreshInput, ArpRefreshOutput } from './arp-refresh.js';
import { CleanupInput, CleanupOutput } from './cleanup.js';
import { DiscardTargetInput, DiscardTargetOutput } from './discard-target.js';
import { ResumeSourceInput, ResumeSourceOutput } from './resume-source.js';
import { CloneCopyInput, CloneCopyOutput } from './clone-copy.js';
import { CloneIdentityInput, CloneIdentityOutput } from './clone-identity.js';
import { UnifyInput, UnifyOutput } from './unify.js';
import { CheckpointDumpInput, CheckpointDumpOutput } from './checkpoint-dump.js';
import { CheckpointRestoreInput, CheckpointRestoreOutput } from './checkpoint-restore.js';
import { IndexCopyInput, IndexCopyOutput } from './index-copy.js';

/** What a finished step adds to an operation's figures (summed over its steps by `summarize`). */
export interface StepFigures {
  bytesTransferred?: number;
  precopyPasses?: number;
  /** When the container stopped running at the source (frozen or stopped). */
  frozenAt?: number;
  /** When the container ran again at its destination. */
  startedAt?: number;
  checkpointMethod?: string;
  /** Bytes of process state (a CRIU dump) sent, apart from the files' bytes. */
  memoryBytes?: number;
}

/**
 * How the worker and the scheduler treat a step, whatever workflow runs it. Only what differs from
 * an ordinary step is set.
 */
export interface StepTraits<I, O> {
  /** A bulk copy: waits for one of the host's transfer slots (they share its disk and link). */
  bulk?: boolean;
  /**
   * The container is frozen or stopped while it runs: a silent peer is given up on after the short
   * at-rest budget, and a lost link is not retried (the source resumes instead).
   */
  atRest?: (input: I) => boolean;
  /** Starts or announces the container: only the host that owns it (fencing) may run it. */
  ownerOnly?: boolean;
  /** Once a worker began it, the container may have run on that host (a rollback must remove it there). */
  mayStartContainer?: boolean;
  /** The peer host the step talks to (its silence fails the step). */
  peer?: (input: I) => string | undefined;
  figures?: (output: O) => StepFigures;
}

/** How the worker treats one step job, from its (not yet trusted) input. */
export interface ResolvedTraits {
  bulk: boolean;
  atRest: boolean;
  ownerOnly: boolean;
  mayStartContainer: boolean;
  peer?: string;
}

interface Entry<I extends z.ZodType, O extends z.ZodType> {
  input: I;
  output: O;
  traits: StepTraits<z.infer<I>, z.infer<O>>;
  /** The traits for one job's raw input (an input that does not parse has none of the input's). */
  resolve(rawInput: unknown): ResolvedTraits;
  /** What a finished step's raw output adds to the figures (nothing if it does not parse). */
  figures(rawOutput: unknown): StepFigures;
}

function entry<I extends z.ZodType, O extends z.ZodType>(input: I, output: O, traits: StepTraits<z.infer<I>, z.infer<O>> = {}): Entry<I, O> {
  return {
    input,
    output,
    traits,
    resolve(rawInput) {
      const parsed = input.safeParse(rawInput);
      const peer = parsed.success ? traits.peer?.(parsed.data) : undefined;
      return {
        bulk: traits.bulk ?? false,
        atRest: parsed.success && (traits.atRest?.(parsed.data) ?? false),
        ownerOnly: traits.ownerOnly ?? false,
        mayStartContainer: traits.mayStartContainer ?? false,
        ...(peer !== undefined ? { peer } : {}),
      };
    },
    figures(rawOutput) {
      const parsed = output.safeParse(rawOutput);
      return parsed.success && traits.figures ? traits.figures(parsed.data) : {};
    },
  };
}
const peerName = (i: { peer: { name: string } }) => i.peer.name;

/**
 * Every step ferry can run: its input and output schemas and its traits. Workflows (workflows/)
 * say which steps run in which order on which host; the worker implements each step once
 * (apps/worker/src/steps/<name>.ts). Nothing else describes a step.
 */
export const catalogue = {
  preflight: entry(PreflightInput, PreflightOutput, { peer: peerName }),
  'rsync-transfer': entry(RsyncTransferInput, RsyncTransferOutput, {
    bulk: true,
    peer: peerName,
    figures: (o) => ({ bytesTransferred: o.bytesTransferred, precopyPasses: o.passes.length }),
  }),
  checkpoint: entry(CheckpointInput, CheckpointOutput, {
    atRest: () => true,
    peer: peerName,
    figures: (o) => ({
      bytesTransferred: o.finalPass.bytesSent,
      checkpointMethod: o.method,
      ...(o.frozenAt !== undefined ? { frozenAt: o.frozenAt } : {}),
      ...(o.dump ? { memoryBytes: o.dump.bytes } : {}),
    }),
  }),
  'index-copy': entry(IndexCopyInput, IndexCopyOutput),
  restore: entry(RestoreInput, RestoreOutput, {
    ownerOnly: true,
    mayStartContainer: true,
    figures: (o) => (o.startedAt !== undefined ? { startedAt: o.startedAt } : {}),
  }),
  'arp-refresh': entry(ArpRefreshInput, ArpRefreshOutput, { ownerOnly: true }),
  cleanup: entry(CleanupInput, CleanupOutput),
  'discard-target': entry(DiscardTargetInput, DiscardTargetOutput),
  'resume-source': entry(ResumeSourceInput, ResumeSourceOutput, { ownerOnly: true }),
  'clone-copy': entry(CloneCopyInput, CloneCopyOutput, {
    bulk: true,
    atRest: (i) => i.freeze,
    peer: peerName,
    figures: (o) => ({ bytesTransferred: o.bytesSent }),
  }),
  'clone-identity': entry(CloneIdentityInput, CloneIdentityOutput, { mayStartContainer: true }),
  unify: entry(UnifyInput, UnifyOutput),
  // Stops the container (once dumped) and, on a failed dump, lets it run again: the owner's only.
  'checkpoint-dump': entry(CheckpointDumpInput, CheckpointDumpOutput, {
    ownerOnly: true,
    figures: (o) => ({ frozenAt: o.at, checkpointMethod: 'dump' }),
  }),
  'checkpoint-restore': entry(CheckpointRestoreInput, CheckpointRestoreOutput, {
    ownerOnly: true,
    figures: (o) => (o.startedAt !== undefined ? { startedAt: o.startedAt } : {}),
  }),
} as const;

export type StepName = keyof typeof catalogue;
export const StepName = z.enum(Object.keys(catalogue) as [StepName, ...StepName[]]);
export type StepInput<N extends StepName> = z.infer<(typeof catalogue)[N]['input']>;
export type StepOutput<N extends StepName> = z.infer<(typeof catalogue)[N]['output']>;

/** A step's traits for one job's raw input. */
export function resolveTraits(name: StepName, rawInput: unknown): ResolvedTraits {
  return catalogue[name].resolve(rawInput);
}

/** What a finished step's output adds to its operation's figures. */
export function figuresOf(name: StepName, output: unknown): StepFigures {
  return catalogue[name].figures(output);
}
