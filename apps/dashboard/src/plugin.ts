import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import { LiveFeed } from './live.js';
import { PAGE_CSS, PAGE_JS, renderPage } from './page.js';
import { QueueBoard } from './queue-board.js';
import { SnapshotReader, type DashboardSource, type SnapshotLimits } from './snapshot.js';
import { renderSections } from './view.js';

export interface DashboardOptions extends DashboardSource {
  /** How often the live feed reads Redis while a page is open (ms, default 500). */
  refreshMs?: number;
  limits?: Partial<SnapshotLimits>;
  log?: Logger;
}

/** The page and its assets: nothing from elsewhere, no inline script (the HTML carries what hosts wrote into Redis). */
const PAGE_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

/**
 * The dashboard as a Fastify plugin, read-only, to register under any prefix (alone in
 * `serveDashboard`, or behind an authenticated server): `/` the page, `/events` its server-sent
 * event stream, `/queues/` the queue inspector. Any method but GET and HEAD is refused (405), the
 * inspector's own actions included.
 */
export const dashboardPlugin: FastifyPluginAsync<DashboardOptions> = async (app, o) => {
  const reader = new SnapshotReader(o, o.limits);
  const board = new QueueBoard(o.store.redis, o.store.prefix, `${app.prefix}/queues`);
  const sections = async () => {
    const snap = await reader.read();
    board.sync(snap.hosts.map((h) => h.name));
    return renderSections(snap);
  };
  const feed = new LiveFeed(sections, o.refreshMs ?? 500, o.log);

  app.addHook('onRequest', async (req, reply) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply.code(405).header('allow', 'GET, HEAD').send({ error: 'the ferry dashboard is read-only' });
  });
  // Streams end before the server waits for its connections to close.
  app.addHook('preClose', async () => feed.close());
  app.addHook('onClose', async () => board.close());

  app.get('/', async (req, reply) => {
    // Its links are relative: the page must be at a path ending in '/'.
    const path = req.url.split('?')[0]!;
    if (!path.endsWith('/')) return reply.redirect(`${path}/`);
    return page(reply, 'text/html; charset=utf-8', renderPage(await sections()));
  });
  app.get('/dashboard.js', async (_req, reply) => page(reply, 'text/javascript; charset=utf-8', PAGE_JS));
  app.get('/dashboard.css', async (_req, reply) => page(reply, 'text/css; charset=utf-8', PAGE_CSS));
  app.get('/events', (_req, reply) => {
    reply.hijack();
    feed.attach(reply.raw);
  });
  await app.register(board.plugin(), { prefix: '/queues' });
};

function page(reply: FastifyReply, type: string, body: string): FastifyReply {
  return reply.headers(PAGE_HEADERS).type(type).send(body);
}
