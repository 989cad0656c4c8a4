import { readFile } from 'node:fs/promises';
import type { Page } from 'puppeteer-core';

/**
 * Reading the dashboard's page in a browser: what the tests of test/fast/dashboard.test.ts and
 * test/e2e/dashboard.test.ts look at.
 */

/** An element's text as shown (innerText: hidden parts left out, cells separated). */
export async function textOf(page: Page, selector: string): Promise<string> {
  return page.$eval(selector, (e) => (e as HTMLElement).innerText);
}

/**
 * From now on the page records every step state it shows for any running operation
 * (`<op> <phase>:<step>:<state>`, first sighting order), whatever replaces the section.
 */
export async function watchSteps(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = window as unknown as { stepsSeen: string[] };
    w.stepsSeen = [];
    const record = () => {
      for (const tr of document.querySelectorAll<HTMLElement>('#running article[data-op] tr[data-step]')) {
        const op = tr.closest<HTMLElement>('article')!.dataset.op;
        const k = `${op} ${tr.dataset.phase}:${tr.dataset.step}:${tr.dataset.state}`;
        if (!w.stepsSeen.includes(k)) w.stepsSeen.push(k);
      }
    };
    record();
    new MutationObserver(record).observe(document.getElementById('running')!, { childList: true, subtree: true });
  });
}

/** The step states the page has shown for operation `id`, in the order first seen: `forward:restore:running`. */
export async function stepsSeen(page: Page, id: string): Promise<string[]> {
  const all = await page.evaluate(() => (window as unknown as { stepsSeen: string[] }).stepsSeen);
  return all.filter((k) => k.startsWith(`${id} `)).map((k) => k.slice(id.length + 1));
}

/** The page's count of live updates applied (server-sent `sections` events). */
export async function updatesOf(page: Page): Promise<number> {
  return Number(await page.$eval('body', (b) => (b as HTMLElement).dataset.updates));
}

/** A full-page screenshot saved at `path` (PNG): whether the file is one, and its size. */
export async function screenshot(page: Page, path: string): Promise<{ png: boolean; bytes: number }> {
  await page.screenshot({ path, fullPage: true });
  const file = await readFile(path);
  return { png: file.subarray(0, 8).toString('hex') === '89504e470d0a1a0a', bytes: file.length };
}

/** The text of each cell of a table row. */
export async function cellsOf(page: Page, row: string): Promise<string[]> {
  return page.$$eval(`${row} td`, (tds) => tds.map((td) => td.textContent ?? ''));
}
