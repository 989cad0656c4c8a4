import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fmtBytes, fmtMs, type OperationSummary } from '@ferry/core';
import { startHelper, type Helper } from '@ferry/infra';
import { labContainerCreate } from '@ferry/lab';
import { CLI, containerState, ferry, useLab } from '../support/lab.js';
import { launchChromium, noBrowser, type HeadlessBrowser } from '../support/browser.js';
import { cellsOf, screenshot, stepsSeen, textOf, updatesOf, watchSteps } from '../support/dashboard-page.js';
import { until } from '../support/until.js';

// Real everything: a lab of two hosts (network namespaces with sshd, LXC and a worker each), the
// embedded Redis, the scheduler, the real `ferry dashboard` (the built CLI) and headless chromium.
if (noBrowser) console.warn(`test/e2e/dashboard.test.ts skipped: ${noBrowser}`);

describe.skipIf(noBrowser !== undefined)('ferry dashboard in the lab, in headless chromium', () => {
  const { host: h } = useLab(2);
  let chromium: HeadlessBrowser;
  let dashboard: Helper;
  let url: string;
  let dir: string;

  beforeAll(async () => {
    [chromium, dir] = await Promise.all([launchChromium(), mkdtemp(join(tmpdir(), 'ferry-dashboard-e2e-'))]);
    // The lab's Redis and prefix reach the CLI through the environment useLab set.
    dashboard = startHelper(process.execPath, [CLI, 'dashboard', '--listen', '127.0.0.1:0']);
    let out = '';
    dashboard.onStdout((chunk) => (out += chunk.toString()));
    url = await until(() => /ferry dashboard: (http:\/\/127\.0\.0\.1:\d+\/) \(read-only/.exec(out)?.[1], 30_000).catch(() => {
      throw new Error(`ferry dashboard did not say where it listens: ${out}${dashboard.stderrTail()}`);
    });
  });
  afterAll(async () => {
    dashboard?.stop();
    await chromium?.close();
    if (dir && !process.env.FERRY_KEEP_SCREENSHOTS) await rm(dir, { recursive: true, force: true });
  });

  it('follows a real migration: the transfer with a moving bar and its rate, every step, the history row, the container on h2', async () => {
    await labContainerCreate({ name: 'dash1', host: 'h1', sizeMb: 64 });
    const page = await chromium.page();
    await page.goto(url);
    await page.waitForSelector('#status.live');
    await page.waitForSelector('#hosts tbody[data-host="h1"] tr[data-container="dash1"] td.state.RUNNING', { timeout: 30_000 });
    await page.evaluate(() => ((window as unknown as { loadedOnce: boolean }).loadedOnce = true));
    await watchSteps(page);
    const updatesBefore = await updatesOf(page);

    // Slowed down (8 MB/s for 64 MiB) so the transfer runs long enough to be seen moving.
    const sub = await ferry(['migrate', 'dash1', '--from', 'h1', '--to', 'h2', '--bwlimit', '8000', '--json']);
    expect(sub.code, sub.stderr).toBe(0);
    const { id } = JSON.parse(sub.stdout) as { id: string };

    // The transfer's bar and rate, as rsync reports them, and the bar moving between two events.
    const transfer = `#running article[data-op="${id}"] tr[data-step="rsync-transfer"][data-state="running"]`;
    const percentNow = () => page.$eval(transfer, (tr) => Number(tr.querySelector('progress')?.getAttribute('value') ?? NaN)).catch(() => NaN);
    await page.waitForFunction((sel) => Boolean(document.querySelector(`${sel} progress`)), { timeout: 60_000 }, transfer);
    const first = await percentNow();
    expect(await textOf(page, `${transfer} td.progress`)).toMatch(/precopy pass 1 .*\d+%.*\d+(\.\d+)? [KMG]?i?B .*[\d.]+[kMG]?B\/s/);
    expect((await screenshot(page, join(dir, 'dashboard-transfer.png'))).png).toBe(true);
    await page.waitForFunction((sel, was) => Number(document.querySelector(`${sel} progress`)?.getAttribute('value') ?? was) > was, { timeout: 60_000 }, transfer, first);

    // The end, as the page shows it: the history's row done, the container running on h2 only.
    const row = `#history tr[data-op="${id}"]`;
    await page.waitForSelector(`${row}[data-state="done"]`, { timeout: 180_000 });
    await page.waitForSelector('#hosts tbody[data-host="h2"] tr[data-container="dash1"] td.state.RUNNING', { timeout: 30_000 });
    await page.waitForFunction(() => !document.querySelector('#hosts tbody[data-host="h1"] tr[data-container="dash1"]'), { timeout: 30_000 });
    expect(await containerState('h2', h('h2').lxcPath, 'dash1')).toBe('RUNNING');

    // Live, not reloaded: the same document took the events and saw the steps move.
    expect(await page.evaluate(() => (window as unknown as { loadedOnce?: boolean }).loadedOnce)).toBe(true);
    expect(await updatesOf(page)).toBeGreaterThan(updatesBefore);
    const seen = await stepsSeen(page, id);
    expect(seen).toEqual(expect.arrayContaining(['forward:preflight:done', 'forward:rsync-transfer:running', 'forward:checkpoint:pending']));
    expect(await page.$(`#running article[data-op="${id}"]`)).toBeNull();

    // The history's figures are the record's (ferry status --json).
    const s = JSON.parse((await ferry(['status', id, '--json'])).stdout) as OperationSummary;
    expect(s.state).toBe('done');
    const cells = await cellsOf(page, row);
    expect(cells).toEqual(expect.arrayContaining([id, 'migrate', 'dash1', 'h1 → h2', 'done', fmtMs(s.totalMs), fmtMs(s.frozenMs), fmtMs(s.downtimeMs), fmtBytes(s.bytesTransferred)]));
    expect(s.bytesTransferred).toBeGreaterThan(64 * 1024 * 1024);

    const shot = await screenshot(page, join(dir, 'dashboard-migrated.png'));
    expect(shot.png).toBe(true);
    expect(shot.bytes).toBeGreaterThan(10_000);
    if (process.env.FERRY_KEEP_SCREENSHOTS) console.log(`dashboard screenshots: ${dir}`);
    expect(await textOf(page, row)).toMatch(/dash1.*done/s);

    // The queue inspector shows both hosts' queues, read-only.
    await page.goto(new URL('queues/', url).href);
    await page.waitForFunction(() => document.body.innerText.includes('host-h2'), { timeout: 30_000 });
    await page.waitForFunction(() => !document.body.innerText.includes('Loading'), { timeout: 30_000 });
    expect((await screenshot(page, join(dir, 'queues.png'))).png).toBe(true);
    expect((await fetch(new URL('queues/api/queues/host-h1/pause', url), { method: 'PUT' })).status).toBe(405);
    await page.close();
  });

  it('refuses to listen beyond this host without --allow-remote: exit 2, saying why', async () => {
    const r = await ferry(['dashboard', '--listen', '0.0.0.0:0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^ferry: dashboard: listen: 0\.0\.0\.0 is not a loopback address: the dashboard has no authentication/);
  });
});
