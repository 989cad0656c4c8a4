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

function once(): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(url!, { timeout: 250, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
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
