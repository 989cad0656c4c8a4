import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveDashboard, type DashboardServer } from '@ferry/dashboard';
import { HostRegistry } from '@ferry/infra';
import { FakeWorld, useFakeClusters } from '../../../test/support/fake/index.js';
import { launchChromium, noBrowser, type HeadlessBrowser } from '../../../test/support/browser.js';
import { cellsOf, screenshot, stepsSeen, textOf, updatesOf, watchSteps } from '../../../test/support/dashboard-page.js';

/**
 * FAKE HOSTS, REAL BROWSER: the dashboard served on loopback over a fake-host cluster (the fast
 * tier's: real scheduler and workers on a real redis-server, test/support/fake), opened in headless
 * chromium during a migration. The page must follow the migration by its server-sent events alone
 * (no reload): the transfer step running with its stage, then the next step, the operation in the
 * history with its figures, the container on its new host; and the queue inspector, read-only.
 * The same in the lab: test/e2e/dashboard.test.ts.
 *
 * In the host project, not the fast tier: it needs no root, but chromium takes seconds of both
 * cores to start and render (5-8 s of a 2-core machine under load before the test's own 8-14 s),
 * beside the fast tier's files that run side by side and must stay quick.
 */
if (noBrowser) console.warn(`apps/cli/test/dashboard-browser.test.ts skipped: ${noBrowser}`);

describe.skipIf(noBrowser !== undefined)('dashboard in headless chromium (fake hosts, real scheduler and workers)', () => {
  const clusters = useFakeClusters();
  let chromium: HeadlessBrowser;
  let dir: string;
  beforeAll(async () => {
    [chromium, dir] = await Promise.all([launchChromium(), mkdtemp(join(tmpdir(), 'ferry-dashboard-test-'))]);
  });
  afterAll(async () => {
    await chromium?.close();
    // FERRY_KEEP_SCREENSHOTS=1 keeps the screenshot to look at (its path is printed).
    if (dir && !process.env.FERRY_KEEP_SCREENSHOTS) await rm(dir, { recursive: true, force: true });
  });

  it('follows a migration live: the transfer running, then every step done, the history row and the container on h2', async () => {
    const world = new FakeWorld();
    world.addHost('h1');
    world.addHost('h2');
    world.create('h1', 'web', { state: 'RUNNING', ip: '10.0.3.10', mac: '02:00:00:00:00:10', files: { 'etc/hostname': 'web\n', 'srv/data': 'x'.repeat(8192) } });
    const c = await clusters.start({ world });
    let server: DashboardServer | undefined;
    const page = await chromium.page();
    try {
      server = await serveDashboard({ store: c.store, registry: new HostRegistry(c.store.redis, c.prefix), listen: { host: '127.0.0.1', port: 0 }, refreshMs: 100 });
      await page.goto(server.url);
      await page.waitForSelector('#status.live');
      await page.waitForSelector('#hosts tbody[data-host="h1"] tr[data-container="web"]');
      await page.evaluate(() => ((window as unknown as { loadedOnce: boolean }).loadedOnce = true));
      await watchSteps(page);

      // The transfer holds in the middle of its first pass, then the checkpoint at its start: the
      // page shows one running (with its stage) and the other pending, then the first done and the
      // second running.
      const hang = c.world.faults.add({ step: 'rsync-transfer', host: 'h1', at: 'middle', kind: 'hang' });
      const freeze = c.world.faults.add({ step: 'checkpoint', host: 'h1', at: 'start', kind: 'hang' });
      const id = await c.migrate({ container: 'web', from: 'h1', to: 'h2' });
      await hang.reached;
      const transfer = `#running article[data-op="${id}"] tr[data-step="rsync-transfer"][data-state="running"]`;
      await page.waitForFunction((sel) => document.querySelector(sel)?.textContent?.includes('precopy pass 1'), {}, transfer);
      expect(await textOf(page, `#running article[data-op="${id}"] h3`)).toMatch(new RegExp(`migrate ${id}: web h1 → h2 \\(restart\\)\\s+running`));
      expect(await page.$eval(`#running article[data-op="${id}"] tr[data-step="checkpoint"]`, (e) => (e as HTMLElement).dataset.state)).toBe('pending');
      const updatesWhileHeld = await updatesOf(page);
      expect((await screenshot(page, join(dir, 'dashboard-running.png'))).png).toBe(true);

      hang.release();
      await freeze.reached;
      await page.waitForSelector(`#running article[data-op="${id}"] tr[data-step="checkpoint"][data-state="running"]`);
      expect(await page.$eval(`#running article[data-op="${id}"] tr[data-step="rsync-transfer"]`, (e) => (e as HTMLElement).dataset.state)).toBe('done');
      freeze.release();
      await c.waitFor(id, 'done');
      const row = `#history tr[data-op="${id}"]`;
      await page.waitForSelector(`${row}[data-state="done"]`);
      await page.waitForSelector(`#hosts tbody[data-host="h2"] tr[data-container="web"] td.state.RUNNING`);

      // Live, not reloaded: the same document took more events, and saw each step move.
      expect(await page.evaluate(() => (window as unknown as { loadedOnce?: boolean }).loadedOnce)).toBe(true);
      expect(await updatesOf(page)).toBeGreaterThan(updatesWhileHeld);
      const seen = await stepsSeen(page, id);
      const order = (k: string) => {
        expect(seen, `the page never showed ${k}`).toContain(k);
        return seen.indexOf(k);
      };
      expect(order('forward:rsync-transfer:running')).toBeLessThan(order('forward:rsync-transfer:done'));
      expect(order('forward:checkpoint:pending')).toBeLessThan(order('forward:checkpoint:running'));
      expect(await page.$(`#running article[data-op="${id}"]`)).toBeNull();

      // The history's row: the container, its hosts, its final state and figures.
      const cells = await cellsOf(page, row);
      expect(cells).toEqual(expect.arrayContaining([id, 'migrate', 'web', 'h1 → h2', 'restart', 'done']));
      expect(cells.some((t) => /\d+(\.\d)? (B|KiB)$/.test(t))).toBe(true); // bytes moved
      expect(await page.$eval(`${row} td.error`, (td) => td.textContent)).toBe('');

      const shot = await screenshot(page, join(dir, 'dashboard-migrated.png'));
      expect(shot.png).toBe(true);
      expect(shot.bytes).toBeGreaterThan(10_000);
      if (process.env.FERRY_KEEP_SCREENSHOTS) console.log(`dashboard screenshots: ${dir}`);
      const body = await textOf(page, 'body');
      expect(body).toContain('web');
      expect(body).toContain('done');

      // The queue inspector: every host's queues, read-only (its actions refused, whatever they are).
      const refused = await fetch(new URL(`queues/api/queues/host-h1/pause`, server.url), { method: 'PUT' });
      expect(refused.status).toBe(405);
      await page.goto(new URL('queues/', server.url).href);
      await page.waitForFunction(() => document.body.innerText.includes('host-h2'));
      await page.waitForFunction(() => !document.body.innerText.includes('Loading'));
      expect((await screenshot(page, join(dir, 'queues.png'))).png).toBe(true);
      const api = (await (await fetch(new URL('queues/api/queues', server.url))).json()) as { queues: { name: string; readOnlyMode: boolean }[] };
      expect(api.queues.map((q) => q.name)).toEqual(expect.arrayContaining(['scheduler', 'host-h1', 'host-h2', 'exec-h1', 'toolbox-h2']));
      expect(api.queues.every((q) => q.readOnlyMode)).toBe(true);
    } finally {
      await page.close();
      await server?.close();
    }
  });
});
