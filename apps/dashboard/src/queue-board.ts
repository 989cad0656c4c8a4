import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import { Queue } from 'bullmq';
import type { FastifyPluginCallback } from 'fastify';
import { queueNames, toolboxQueues } from '@ferry/core';
import type { RedisClient } from '@ferry/infra';

/** Every queue a host has: its steps, its `ferry exec` sessions, its toolbox requests. */
const hostQueues = (host: string) => [queueNames.host(host), toolboxQueues.exec(host), toolboxQueues.admin(host)];

/**
 * The queue inspector: Bull Board over ferry's queues, every one in its read-only mode (no retry,
 * clean, pause, promote or add; its API refuses them too, and the dashboard's server refuses any
 * method but GET and HEAD before they reach it). The scheduler's and rebalance queues from the
 * start, each host's as it appears in the registry (`sync`).
 */
export class QueueBoard {
  private readonly server = new FastifyAdapter();
  private readonly queues = new Map<string, Queue>();
  private readonly board: ReturnType<typeof createBullBoard>;

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    basePath: string,
  ) {
    this.server.setBasePath(basePath);
    this.board = createBullBoard({
      queues: [queueNames.scheduler, queueNames.rebalance].map((name) => this.adapter(name)),
      serverAdapter: this.server,
      // The way back to the dashboard; no link out (ferry's hosts often reach no outside site).
      options: { uiConfig: { boardTitle: 'ferry queues', hideDocsLink: true, miscLinks: [{ text: 'ferry dashboard', url: `${basePath.replace(/\/queues$/, '')}/` }] } },
    });
  }

  /** Bull Board's pages, assets and API, to register under the base path. */
  plugin(): FastifyPluginCallback {
    return this.server.registerPlugin() as FastifyPluginCallback;
  }

  /** Adds the queues of hosts seen for the first time (a host that goes keeps its queues shown). */
  sync(hosts: readonly string[]): void {
    for (const name of hosts.flatMap(hostQueues)) if (!this.queues.has(name)) this.board.addQueue(this.adapter(name));
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
  }

  private adapter(name: string): BullMQAdapter {
    // Reading only: no queue meta written on open (what a Queue does by default).
    const q = new Queue(name, { connection: this.redis, prefix: this.prefix, skipMetasUpdate: true });
    this.queues.set(name, q);
    return new BullMQAdapter(q, { readOnlyMode: true, allowRetries: false });
  }
}
