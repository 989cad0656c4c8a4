import { describeOperation, fields, fmtBytes, fmtMs, hostUsage, shownState, stageText, subjectOf, type HostInfo, type StepSummary } from '@ferry/core';
import type { ProgressEntry } from '@ferry/infra';
import { html, type Html } from './html.js';
import type { OperationView, Snapshot } from './snapshot.js';

/** The page's live parts, each replaced whole when its HTML changes (ids of their elements). */
export const SECTIONS = ['hosts', 'running', 'history'] as const;
export type SectionId = (typeof SECTIONS)[number];
export type Sections = Record<SectionId, string>;

/** A worker beats every 400 ms: one silent longer than this is shown late. */
const LATE_MS = 5000;
const MARK: Record<string, string> = { done: '✓', failed: '✗', running: '…', pending: '·' };

const pct = (x: number) => `${(x * 100).toFixed(0)}%`;
const utc = (ms: number) => new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
const seconds = (ms: number) => `${(Math.max(0, ms) / 1000).toFixed(1)} s`;

export function renderSections(s: Snapshot): Sections {
  return { hosts: hosts(s).text, running: running(s).text, history: history(s).text };
}

function hosts(s: Snapshot): Html {
  if (!s.hosts.length) return html`<p class="empty">no hosts registered: start a worker on each host (ferry worker --host NAME)</p>`;
  return html`<table class="hosts">
<thead><tr><th>host</th><th>address</th><th>heartbeat</th><th>cpu</th><th>memory</th><th>disk free</th><th>containers</th></tr></thead>
${s.hosts.map((h) => host(h, s))}
</table>`;
}

function host(h: HostInfo, s: Snapshot): Html {
  const age = s.at - (s.alive.get(h.name) ?? h.lastSeen);
  const use = hostUsage(h);
  const cap = h.capacity;
  const cpu = cap ? html`<meter min="0" max="1" value="${use.cpu / cap.cpus}"></meter> ${pct(use.cpu / cap.cpus)} of ${cap.cpus}` : html`<span class="dim">not reported</span>`;
  const mem = cap ? html`<meter min="0" max="1" value="${use.memBytes / cap.memBytes}"></meter> ${pct(use.memBytes / cap.memBytes)} (${fmtBytes(use.memBytes)} of ${fmtBytes(cap.memBytes)})` : html`<span class="dim">not reported</span>`;
  return html`<tbody data-host="${h.name}">
<tr class="host"><th>${h.name}${h.capabilities.checkpoint ? html` <span class="tag">live</span>` : ''}</th><td>${h.address}</td><td class="${age > LATE_MS ? 'late' : 'ok'}">${seconds(age)} ago</td><td>${cpu}</td><td>${mem}</td><td>${fmtBytes(h.freeBytes)}</td><td>${h.containers.length} (${use.running} running)</td></tr>
${h.containers.map(
  (c) => html`<tr class="container" data-container="${c.name}"><td>${c.name}</td><td>${c.ip ?? ''}</td><td class="state ${shownState(c)}">${shownState(c)}</td><td>${c.load ? `${c.load.cpu.toFixed(2)} cpu` : ''}</td><td>${c.load ? fmtBytes(c.load.memBytes) : ''}</td><td>${c.load?.diskBytes !== undefined ? `disk ${fmtBytes(c.load.diskBytes)}` : ''}</td><td></td></tr>`,
)}
</tbody>`;
}

function running(s: Snapshot): Html {
  if (!s.active.length) return html`<p class="empty">nothing running</p>`;
  return html`${s.active.map((o) => operation(o, s.at))}`;
}

function operation(o: OperationView, now: number): Html {
  const { record: r, summary: sum } = o;
  const idx = { forward: 0, rollback: 0 };
  const rows = sum.steps.map((st) => {
    const i = idx[st.phase]++;
    // A step's start is recorded with its result: one still running counts from when it was issued.
    const issued = r.state === 'rejected' ? undefined : (st.phase === 'forward' ? r.steps : r.rollback)[i]?.enqueuedAt;
    return step(st, o.progress[fields.progress(st.phase, i)], now, issued);
  });
  return html`<article class="operation" data-op="${r.id}" data-state="${r.state}">
<h3>${describeOperation(r)} <span class="state ${r.state}">${r.state}</span> <span class="dim">for ${seconds(now - r.createdAt)}</span></h3>
<table class="steps"><thead><tr><th></th><th>step</th><th>host</th><th>state</th><th>time</th><th>progress</th></tr></thead><tbody>${rows}</tbody></table>
${r.state === 'paused' ? html`<p class="hint">waiting: ferry retry ${r.id} or ferry cancel ${r.id}</p>` : ''}
</article>`;
}

function step(st: StepSummary, p: ProgressEntry | undefined, now: number, issuedAt: number | undefined): Html {
  const since = st.startedAt ?? issuedAt;
  const time = st.ms !== undefined ? fmtMs(st.ms) : st.state === 'running' && since !== undefined ? seconds(now - since) : '';
  return html`<tr data-step="${st.name}" data-phase="${st.phase}" data-state="${st.state}"><td class="mark">${MARK[st.state] ?? '?'}</td><td>${st.phase === 'rollback' ? '↩ ' : ''}${st.name}</td><td>${st.host}</td><td class="state ${st.state}">${st.state}${st.attempts > 1 ? ` (${st.attempts} attempts)` : ''}</td><td>${time}</td><td class="progress">${st.state === 'running' && p ? progress(p) : ''}${st.error ? html`<span class="error">${st.error.code}: ${st.error.message}</span>` : ''}</td></tr>`;
}

/** A running step's latest progress: its stage, a transfer's bar, bytes and rate, or what it said (a scan's file count). */
function progress(p: ProgressEntry): Html {
  const num = (k: string) => (typeof p[k] === 'number' ? (p[k] as number) : undefined);
  const text = (k: string) => (typeof p[k] === 'string' ? (p[k] as string) : undefined);
  const percent = num('percent');
  const bytes = num('bytes');
  return html`<span class="stage">${stageText(p)}</span>${percent !== undefined ? html` <progress max="100" value="${percent}"></progress> <span class="percent">${percent}%</span>` : ''}${bytes !== undefined ? html` <span class="bytes">${fmtBytes(bytes)}</span>` : ''}${text('rate') ? html` <span class="rate">${text('rate')}</span>` : ''}${text('message') ? html` <span class="message">${text('message')}</span>` : ''}`;
}

function history(s: Snapshot): Html {
  if (!s.ended.length) return html`<p class="empty">no operation has ended yet</p>`;
  return html`<table class="history">
<thead><tr><th>ended (UTC)</th><th>operation</th><th>kind</th><th>containers</th><th>hosts</th><th>mode</th><th>state</th><th>took</th><th>frozen</th><th>downtime</th><th>moved</th><th>error</th></tr></thead>
<tbody>${s.ended.map(({ record: r, summary: x }) => {
    const moved = x.bytesTransferred ? fmtBytes(x.bytesTransferred) + (x.memoryBytes !== undefined ? ` + ${fmtBytes(x.memoryBytes)} memory` : '') : '';
    return html`<tr data-op="${r.id}" data-state="${r.state}"><td>${x.endedAt !== undefined ? utc(x.endedAt) : ''}</td><td class="id">${r.id}</td><td>${r.kind}</td><td class="subject">${subjectOf(r)}</td><td>${x.from === x.to ? x.from : `${x.from} → ${x.to}`}</td><td>${x.mode ?? ''}</td><td class="state ${r.state}">${r.state}</td><td>${fmtMs(x.totalMs)}</td><td>${fmtMs(x.frozenMs)}</td><td>${fmtMs(x.downtimeMs)}</td><td>${moved}</td><td class="error">${x.error && r.state !== 'done' ? `${x.error.code}: ${x.error.message}` : ''}</td></tr>`;
  })}</tbody>
</table>`;
}
