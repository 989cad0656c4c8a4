#!/usr/bin/env node
/**
 * HTTP probe, run inside the lab's client namespace: one GET every `intervalMs` to `url`,
 * printing `ok <epoch-ms>` or `fail <epoch-ms>` per attempt. Stops by itself after `maxMs`
 * (bounded load), or when its parent stops it.
 */
import { request } from 'node:http';

const [url, intervalArg, maxArg] = process.argv.slice(2);
if (!url) {
  process.stderr.write('usage: probe URL [intervalMs] [maxMs]\n');
  process.exit(2);
}
const intervalMs = Number(intervalArg ?? 20);
const maxMs = Number(maxArg ?? 600_000);
const started = Date.now();

/**
 * One GET. Every way it can end settles it once: a response cut off after its headers (the server
 * frozen mid-answer) ends in `close` on the response, not in `error` on the request, and an attempt
 * that never settled would stop the probe for good.
 */
function once(): Promise<boolean> {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (ok: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      resolve(ok);
    };
    const req = request(url!, { timeout: 250, agent: false }, (res) => {
      res.resume();
      res.on('end', () => settle(res.statusCode === 200));
      res.on('error', () => settle(false));
      res.on('close', () => settle(false)); // after 'end' this changes nothing
    });
    const deadline = setTimeout(() => req.destroy(), 1000); // a slow trickle counts as no answer
    req.on('timeout', () => req.destroy());
    req.on('error', () => settle(false));
    req.on('close', () => setImmediate(() => settle(false)));
    req.end();
  });
}

while (Date.now() - started < maxMs) {
  const t = Date.now();
  const ok = await once();
  process.stdout.write(`${ok ? 'ok' : 'fail'} ${t}\n`);
  const wait = intervalMs - (Date.now() - t);
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
}
