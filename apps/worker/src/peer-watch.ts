import { FerryError } from '@ferry/core';
import type { HostRegistry } from '@ferry/infra';

/**
 * Watches a peer's heartbeat while a step works against it, and aborts the step once the peer has
 * been silent for `limitMs`: an rsync to a host that is gone would otherwise wait out ssh's own
 * timeouts, attempt after attempt, while the source stays frozen.
 *
 * Silence is counted on this host's clock, from the last change of the peer's liveness beat that this
 * watch saw, and only while the registry answers promptly: a Redis outage stops every heartbeat at
 * once and says nothing about the peer, so the count starts over when Redis answers again.
 *
 * A silent beat means the peer's worker is silent, not that the host is gone: a worker restarting
 * (killed, upgraded) stops beating while its host, sshd and link, all that a transfer needs, are
 * fine. So before giving up, `answers` (when given) asks the host itself over SSH; if it answers,
 * the count starts over.
 */
export class PeerWatch {
  private readonly ac = new AbortController();
  private readonly timer: NodeJS.Timeout;
  private lastSeen: number | null | undefined;
  private since = Date.now();
  private polling = false;
  /** Set once the peer is taken as gone; the step's signal is aborted with it. */
  lost: FerryError | undefined;

  constructor(
    private readonly registry: HostRegistry,
    private readonly peer: string,
    private readonly limitMs: number,
    private readonly everyMs = 1000,
    private readonly answers?: () => Promise<boolean>,
  ) {
    this.timer = setInterval(() => void this.poll(), everyMs);
    this.timer.unref();
  }

  get signal(): AbortSignal {
    return this.ac.signal;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async poll(): Promise<void> {
    if (this.polling || this.lost) return;
    this.polling = true;
    const asked = Date.now();
    try {
      const seen = await this.registry.lastAlive(this.peer);
      const now = Date.now();
      if (now - asked > 2 * this.everyMs || seen !== this.lastSeen) {
        this.lastSeen = seen;
        this.since = now;
        return;
      }
      if (now - this.since < this.limitMs) return;
      if (this.answers && (await this.answers())) {
        this.since = Date.now();
        return;
      }
      if (this.lost) return;
      this.lost = new FerryError('PEER_LOST', `host ${this.peer} has not reported for ${Math.round((now - this.since) / 1000)} s while this step worked against it`);
      this.stop();
      this.ac.abort(this.lost);
    } catch {
      this.since = Date.now();
    } finally {
      this.polling = false;
    }
  }
}
