import { existsSync, mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';

/** Debian's chromium (scripts/setup.sh installs it). */
export const CHROMIUM = '/usr/bin/chromium';
/** Why a browser test cannot run here, or undefined when it can. */
export const noBrowser = existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is absent (apt-get install chromium, or scripts/setup.sh)`;

export interface HeadlessBrowser {
  browser: Browser;
  page(): Promise<Page>;
  close(): Promise<void>;
}

/**
 * Headless chromium driven by puppeteer-core, with a fresh profile removed at close. As root it
 * needs --no-sandbox; the background-networking flags keep it from dialling out (this machine's
 * network refuses those connections, and a test has no business making them).
 */
export async function launchChromium(): Promise<HeadlessBrowser> {
  const profile = mkdtempSync(join(tmpdir(), 'ferry-chromium-'));
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    userDataDir: profile,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  let blankTaken = false;
  return {
    browser,
    page: async () => {
      // The tab the browser opened at launch first (a new one costs a second or more on a busy machine).
      const [blank] = blankTaken ? [] : await browser.pages();
      blankTaken = true;
      const p = blank ?? (await browser.newPage());
      await p.setViewport({ width: 1280, height: 900 });
      return p;
    },
    close: async () => {
      await browser.close().catch(() => undefined);
      await rm(profile, { recursive: true, force: true });
    },
  };
}
