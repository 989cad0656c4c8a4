import { FerryError, type StepName } from '@ferry/core';

/**
 * FAKE. Fault injection for the fake steps: step X on host H fails (with a stable code, retryable
 * or not) N times, hangs until released, or its host's worker "crashes" there. Each fake step
 * passes its fault points: `start` before it observes anything, `middle` after its first act
 * (see fakeSteps for what that is per step).
 */
export type FaultPoint = 'start' | 'middle';

export interface FaultSpec {
  step: StepName;
  host: string;
  /** Only when the step acts on this container (its input's `container`). */
  container?: string;
  /** Default `start`. */
  at?: FaultPoint;
  /**
   * fail: throw a FerryError `code` (default FAKE_FAULT), `retryable` (default false), `times` times.
   * hang: wait until `release()` (or the worker's abort: a retryable ABORTED, as the real steps).
   * crash: the host's worker dies here (see `Faults.onCrash`); the step never returns, whatever happens.
   */
  kind: 'fail' | 'hang' | 'crash';
  times?: number;
  code?: string;
  retryable?: boolean;
}

export class Fault {
  hits = 0;
  remaining: number;
  readonly reached: Promise<void>;
  private reach!: () => void;
  private readonly releasedP: Promise<void>;
  private doRelease!: () => void;

  constructor(readonly spec: FaultSpec) {
    this.remaining = spec.kind === 'fail' ? (spec.times ?? 1) : 1;
    this.reached = new Promise((r) => (this.reach = r));
    this.releasedP = new Promise((r) => (this.doRelease = r));
  }

  /** Lets a hung step go on. */
  release(): void {
    this.doRelease();
  }

  matches(host: string, step: StepName, container: string | undefined, at: FaultPoint): boolean {
    const s = this.spec;
    return this.remaining > 0 && s.host === host && s.step === step && (s.at ?? 'start') === at && (s.container === undefined || s.container === container);
  }

  /** Fires the fault (the caller checked `matches`). */
  async fire(signal: AbortSignal, onCrash: (host: string) => void): Promise<void> {
    this.remaining -= 1;
    this.hits += 1;
    this.reach();
    const s = this.spec;
    const where = `${s.step} on ${s.host} (${s.at ?? 'start'})`;
    switch (s.kind) {
      case 'fail':
        throw new FerryError(s.code ?? 'FAKE_FAULT', `injected fault: ${where}`, { retryable: s.retryable ?? false });
      case 'hang':
        await new Promise<void>((resolve, reject) => {
          const abort = () => reject(new FerryError('ABORTED', 'worker is shutting down; the step will run again', { retryable: true }));
          if (signal.aborted) return abort();
          signal.addEventListener('abort', abort, { once: true });
          void this.releasedP.then(() => {
            signal.removeEventListener('abort', abort);
            resolve();
          });
        });
        return;
      case 'crash':
        onCrash(s.host);
        // A killed process runs nothing more: not the rest of the step, not its report.
        await new Promise<never>(() => undefined);
    }
  }
}

export class Faults {
  private readonly list: Fault[] = [];
  /** What a crash fault does to its host's worker (the fake cluster kills it). */
  onCrash: (host: string) => void = (host) => {
    throw new Error(`fake fault: a crash on ${host} with nobody to kill its worker`);
  };

  add(spec: FaultSpec): Fault {
    const f = new Fault(spec);
    this.list.push(f);
    return f;
  }

  /**
   * How long every fault point takes (default 0): fake steps then last about as long as a few
   * points each, so that many operations are in flight at any moment (a failover test's window).
   */
  paceMs = 0;

  /** A fault point of a fake step: fires the first armed fault that matches, if any. */
  async point(host: string, step: StepName, container: string | undefined, at: FaultPoint, signal: AbortSignal): Promise<void> {
    if (this.paceMs > 0 && !signal.aborted) await new Promise((r) => setTimeout(r, this.paceMs));
    const f = this.list.find((x) => x.matches(host, step, container, at));
    if (f) await f.fire(signal, this.onCrash);
  }

  /** Disarms every fault (hung steps are released). */
  clear(): void {
    for (const f of this.list.splice(0)) {
      f.remaining = 0;
      f.release();
    }
  }
}
