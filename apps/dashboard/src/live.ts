import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { SECTIONS, type Sections } from './view.js';

/** Comment lines keep idle streams open through proxies that close quiet connections. */
const KEEPALIVE_MS = 15_000;
/** What a browser waits before reconnecting a dropped stream (the `retry:` field). */
const RECONNECT_MS = 2000;

/**
 * The one server-sent event stream: a single loop reads and renders every `everyMs` while at least
 * one page is open (and not at all otherwise), and sends each page the sections whose HTML changed
 * (`sections`: id → HTML), all of them to a page that has just connected. A failed read is told to
 * every page (`problem`) and tried again at the next period.
 */
export class LiveFeed {
  private readonly clients = new Set<ServerResponse>();
  private last?: Sections;
  private timer?: NodeJS.Timeout;
  private keepalive?: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly render: () => Promise<Sections>,
    private readonly everyMs: number,
    private readonly log?: Logger,
  ) {}

  /** Streams to this response until its client goes away (or the feed closes). */
  attach(res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.write(`retry: ${RECONNECT_MS}\n\n`);
    if (this.closed) return void res.end();
    this.clients.add(res);
    res.on('close', () => {
      this.clients.delete(res);
      if (!this.clients.size) this.pause();
    });
    if (!this.timer) this.resume();
    else if (this.last) send(res, 'sections', this.last);
  }

  /** Ends every stream; nothing more is read. */
  close(): void {
    this.closed = true;
    this.pause();
    for (const res of this.clients) res.end();
    this.clients.clear();
  }

  private resume(): void {
    // Sections kept from before the last page closed may be old: the first read sends them all.
    this.last = undefined;
    this.keepalive = setInterval(() => this.clients.forEach((res) => res.write(': keepalive\n\n')), KEEPALIVE_MS);
    const loop = async () => {
      await this.tick();
      if (this.keepalive) this.timer = setTimeout(() => void loop(), this.everyMs);
    };
    this.timer = setTimeout(() => void loop(), 0);
  }

  private pause(): void {
    clearTimeout(this.timer);
    clearInterval(this.keepalive);
    this.timer = undefined;
    this.keepalive = undefined;
  }

  private async tick(): Promise<void> {
    let next: Sections;
    try {
      next = await this.render();
    } catch (err) {
      this.log?.warn({ err }, 'dashboard: reading Redis failed');
      for (const res of this.clients) send(res, 'problem', { message: `cannot read ferry's Redis: ${(err as Error).message}` });
      return;
    }
    const changed = Object.fromEntries(SECTIONS.filter((id) => next[id] !== this.last?.[id]).map((id) => [id, next[id]]));
    this.last = next;
    if (Object.keys(changed).length) for (const res of this.clients) send(res, 'sections', changed);
  }
}

function send(res: ServerResponse, event: string, data: unknown): void {
  // JSON has no raw newlines, so the data is one `data:` line.
  res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}
