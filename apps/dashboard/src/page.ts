import { html, Html } from './html.js';
import type { Sections } from './view.js';

/**
 * The page: its sections as rendered on the server at the request, then kept up to date by one
 * server-sent event stream (`events`): each `sections` event carries the HTML of the sections that
 * changed, which replaces theirs. Every link is relative, so the page works wherever it is mounted.
 */
export function renderPage(s: Sections): string {
  const section = (id: keyof Sections, title: string) => html`<section><h2 id="${id}-title">${title}</h2><div id="${id}">${new Html(s[id])}</div></section>`;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ferry dashboard</title>
<link rel="stylesheet" href="dashboard.css">
<script src="dashboard.js" defer></script>
</head>
<body data-updates="0">
<header>
<h1>ferry</h1>
<nav><a href="#hosts-title">hosts</a> <a href="#running-title">running</a> <a href="#history-title">history</a> <a href="queues/">queues</a></nav>
<span class="tag">read-only</span>
<span id="status" class="connecting">connecting…</span>
<span class="dim">updated <span id="updated">at load</span></span>
</header>
<main>
${section('hosts', 'Hosts')}
${section('running', 'Running now')}
${section('history', 'History')}
<section><h2 id="queues-title">Queues</h2><p>Every queue's jobs (steps per host, the scheduler's results, exec and toolbox requests), read-only: <a href="queues/">queue inspector</a>.</p></section>
</main>
</body>
</html>
`.text;
}

export const PAGE_CSS = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #1d232a; background: #f6f7f9; }
header { display: flex; gap: 1em; align-items: baseline; padding: .6em 1.2em; background: #1d2b3a; color: #fff; }
header h1 { margin: 0; font-size: 1.3em; }
header a { color: #b9d6ff; margin-right: .6em; }
main { padding: 0 1.2em 2em; }
h2 { font-size: 1.1em; margin: 1.2em 0 .4em; }
h3 { font-size: 1em; margin: .2em 0 .4em; font-weight: 600; }
table { border-collapse: collapse; background: #fff; width: 100%; margin-bottom: .6em; }
th, td { text-align: left; padding: .25em .6em; border-bottom: 1px solid #e3e6ea; white-space: nowrap; }
thead th { font-weight: 600; color: #55606c; background: #eef1f4; }
tr.host th { font-size: 1.05em; }
tr.container td:first-child { padding-left: 2em; }
article.operation { background: #fff; border: 1px solid #d5dae0; border-radius: 4px; padding: .5em .8em; margin-bottom: .8em; }
.tag { font-size: .8em; padding: 0 .5em; border-radius: 3px; background: #dde7f3; color: #1d2b3a; }
header .tag { background: #3b5167; color: #fff; }
.dim, .empty { color: #7a8591; }
.state.done, .state.RUNNING { color: #1f7a35; }
.state.running, .state.pending, .state.FROZEN, .state.checkpointed { color: #8a5a00; }
.state.failed, .state.rolled-back, .state.rejected, .state.paused, .error, .late { color: #b3261e; }
.mark { width: 1.2em; }
progress { width: 12em; vertical-align: middle; }
meter { width: 6em; vertical-align: middle; }
#status.live { color: #8fe0a3; } #status.down, #status.connecting { color: #ffb4a9; }
.hint { color: #8a5a00; }
td.error, td.progress { white-space: normal; }
`;

/** The page's script: applies each `sections` event, and says whether the stream is live. */
export const PAGE_JS = `'use strict';
(() => {
  const status = document.getElementById('status');
  const updated = document.getElementById('updated');
  const say = (text, cls) => { status.textContent = text; status.className = cls; };
  let updates = 0;
  const events = new EventSource('events');
  events.addEventListener('sections', (e) => {
    const sections = JSON.parse(e.data);
    for (const id of Object.keys(sections)) {
      const el = document.getElementById(id);
      if (el) el.innerHTML = sections[id];
    }
    document.body.dataset.updates = String(++updates);
    updated.textContent = new Date().toLocaleTimeString();
    say('live', 'live');
  });
  events.addEventListener('problem', (e) => say(JSON.parse(e.data).message, 'down'));
  events.addEventListener('open', () => say('live', 'live'));
  events.addEventListener('error', () => say('reconnecting…', 'down'));
})();
`;
