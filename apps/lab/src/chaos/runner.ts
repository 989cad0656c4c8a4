import { createHash, randomBytes } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { ErrorData, StepRecord, StoredRecord } from '@ferry/core';
import { run, type RunResult } from '@ferry/infra';
import { hostExec, labContainerCreate, labDown, labUp, type LabContainer, type LabInfo } from '../lab/index.js';
import { CHAOS_DIR, CHAOS_SCRIPT } from '../lab/container.js';
import { abandonReplacedLab, labIdentity, removeLabContainer } from '../lab/faults.js';
import { ferryCli } from './ferry-cli.js';
import { ensureHealthy, faultById, type Fault, type FaultCtx } from './faults.js';
import { ACTIVE, ArpWatcher, PlacementMonitor, placementOn, placements, type Poll } from './monitor.js';
import { ClientProbe } from '../probe/client-probe.js';
import { descendants, findProcs } from './procs.js';
import { trialRng } from './rng.js';
import { ended, RecordWatcher, stepNow } from './watch.js';

/**
 * The chaos runner: one lab for the whole run, then per fault N trials of "create a container,
 * migrate it h1 → h2 with a client probing it, inject the fault, play the supervisor, classify".
 * Everything is bounded in time; the lab goes at the end (also on error or abort).
 */

export interface ChaosOptions {
  faults: number[];
  trials: number;
  seed: number;
  sizeMb: number;
  bwlimitKBps: number;
  /** Longest wait for a migration to end before it counts as stuck. */
  trialTimeoutMs: number;
  /** For a stuck trial: how long to wait after the fault is undone, to see whether it recovers. */
  postRecoveryMs: number;
  /** How long to wait for a lab of someone else (same kernel names) to go before giving up. */
  labWaitMs: number;
  /** Where the per-trial details, the report and the lab's logs are kept (default: a new temp dir). */
  evidenceDir?: string;
  verify?: boolean;
  /**
   * Migration mode (default: the CLI's, auto; in a lab without --live that is restart). `live`
   * brings the lab up with --live and gives each container ferry-memsvc, so there are processes
   * and memory to carry (the lab's workers must then be able to checkpoint).
   */
  mode?: 'live' | 'restart';
  /** Fault 5's outage range in ms (default 5-20 s). */
  linkDownMs?: readonly [number, number];
  log?: (line: string) => void;
  signal?: AbortSignal;
}

export type TrialOutcome = 'done' | 'rolled-back' | 'paused' | 'stuck' | 'other';

export interface FaultEvent {
  /** Seconds since the migration was submitted. */
  at: number;
  where: string;
  what: string;
}

export interface TrialResult {
  fault: number;
  trial: number;
  container: string;
  migrationId: string | null;
  state: string;
  outcome: TrialOutcome;
  expected: string;
  ok: boolean;
  problems: string[];
  migrationMs: number | null;
  downtimeMs: number;
  lost: boolean;
  duplicated: boolean;
  dataMismatch: boolean;
  /** The client got answers after the end (within 5 s). */
  serving: boolean;
  /** The root switch's port for the container's MAC at the end, as a host name. */
  servedVia: string | null;
  finalPlacement: Record<string, string>;
  events: FaultEvent[];
  timeline: string[];
  placementTimeline: string[];
  bothActivePolls: Poll[];
  suspectPolls: Poll[];
  monitorPolls: number;
  /** Polls where an lxc-info query failed (neither a state nor "doesn't exist"). */
  monitorErrors: number;
  arpRuns: number;
  arpDuplicates: { t: number; sent: number; received: number; macs: string[] }[];
  /**
   * Digest of the rootfs manifest before the migration, without the rootfs dir's own mtime (see
   * contentDigest) and without the writer's /srv/chaos (it changes all along on the source).
   */
  digestBefore: string;
  /**
   * Per copy at the end: the target's running copy (after `done`) its full digest, compared with
   * the kept source's (`keptSourceDigest`); any other running copy its digest outside /srv/chaos,
   * compared with `digestBefore`. `dataCheck` says which comparison each copy got.
   */
  digestsAfter: Record<string, string>;
  dataCheck: Record<string, string>;
  /** After `done`: the full digest of the source's copy left stopped on h1 (`--keep-source`), as at the freeze. */
  keptSourceDigest?: string;
  /** The writer's rounds (/srv/chaos/count) before the migration and at the end on the source (kept or running). */
  writerRounds: { before: number | null; after: number | null; onTarget?: number | null };
  /** rsync leftovers (partial dirs, temp files) found in a running copy. */
  leftovers: Record<string, string[]>;
  /** rsync receivers for this container still running on a host when the migration ended. */
  receiversAtEnd: string[];
  /** The worker's manifest digest, all fields (differs after any start: the rootfs dir's mtime); before: outside /srv/chaos. */
  manifestDigestBefore: string;
  manifestDigestsAfter: Record<string, string>;
  manifestDiff?: string[];
  error?: ErrorData;
  steps: string[];
  logExcerpt: string[];
  afterRecovery?: string;
  setupError?: string;
}

export interface FaultSummary {
  id: number;
  name: string;
  expected: string;
  trials: number;
  done: number;
  rolledBack: number;
  paused: number;
  stuck: number;
  other: number;
  lost: number;
  duplicated: number;
  dataMismatch: number;
  unexpected: number;
  medianMs: number | null;
  maxMs: number | null;
  maxDowntimeMs: number | null;
  ok: boolean;
  migrations: (string | null)[];
  failures: { trial: number; migrationId: string | null; problems: string[] }[];
}

export interface ChaosReport {
  seed: number;
  trials: number;
  settings: { sizeMb: number; bwlimitKBps: number; trialTimeoutMs: number; verify: boolean };
  faults: FaultSummary[];
  ok: boolean;
  evidenceDir: string;
  aborted?: string;
}

const MANIFEST = fileURLToPath(new URL('../../../worker/dist/manifest/manifest.js', import.meta.url));

/**
 * The comparison of rootfs contents: the worker's manifest (path, type, mode, owner, size, mtime,
 * content hash, xattrs, hard links) with ONE field left out, the mtime of the rootfs directory
 * itself: lxc-start changes it on every start (measured here on a plain busybox container without
 * ferry: it creates and removes an entry at the top of the rootfs), so it differs after any
 * restart-mode move, with or without a fault. In live mode also the mtime of /tmp: CRIU's dump
 * of a tmpfs mount (the container's /dev/shm) bind-mounts it on a temporary directory it makes and
 * removes in the container's /tmp (criu/mount.c get_clean_mnt, "/tmp/cr-tmpfs.XXXXXX"), after the
 * final pass. Every other entry and field counts.
 */
function contentDigest(entries: readonly unknown[], live = false): string {
  const h = createHash('sha256');
  for (const e of entries) {
    const x = e as { path?: string; mtimeMs?: number };
    const ignoreMtime = x.path === '.' || (live && x.path === 'tmp');
    h.update(`${JSON.stringify(ignoreMtime ? { ...x, mtimeMs: undefined } : x)}\n`);
  }
  return h.digest('hex');
}

/** The entries as contentDigest sees them (the rootfs dir's mtime left out), for a diff without that noise. */
const asCompared = (entries: readonly unknown[]) =>
  entries.map((e) => ((e as { path?: string }).path === '.' ? { ...(e as object), mtimeMs: 0 } : e));

interface ManifestModule {
  manifest(root: string, opts?: { excludeNames?: readonly string[] }): Promise<unknown[]>;
  canonicalLine(e: unknown): string;
  diffManifests(a: readonly unknown[], b: readonly unknown[], limit?: number): string[];
}
let manifestMod: Promise<ManifestModule> | undefined;
/** The worker's own manifest (apps/worker/src/manifest), compiled; not exported by @ferry/worker. */
function manifests(): Promise<ManifestModule> {
  return (manifestMod ??= import(pathToFileURL(MANIFEST).href) as Promise<ManifestModule>);
}

/** The worker's manifestDigest of entries already listed (all fields). */
function fullDigest(m: ManifestModule, entries: readonly unknown[]): string {
  const h = createHash('sha256');
  for (const e of entries) h.update(`${m.canonicalLine(e)}\n`);
  return h.digest('hex');
}

/** The container's writer dir and what is in it (see CHAOS_WRITER in lab/container.ts). */
const inWriterDir = (e: unknown) => {
  const p = (e as { path?: string }).path ?? '';
  return p === CHAOS_DIR || p.startsWith(`${CHAOS_DIR}/`);
};
const outsideWriterDir = (entries: readonly unknown[]) => entries.filter((e) => !inWriterDir(e));

/**
 * The manifest of a copy whose writer may be running, without /srv/chaos: the walk leaves out
 * the name `chaos` (no other entry of the lab's busybox tree has it; the filter after keeps only
 * /srv/chaos out), so it never stats a file the writer just removed; getfattr's walk of the whole
 * tree still may meet one, and the listing is then taken again.
 */
async function manifestOutsideWriter(m: ManifestModule, root: string): Promise<unknown[]> {
  for (let attempt = 1; ; attempt++) {
    try {
      return outsideWriterDir(await m.manifest(root, { excludeNames: [CHAOS_DIR.split('/').at(-1)!] }));
    } catch (e) {
      if (attempt >= 5) throw e;
      await sleep(100);
    }
  }
}

/** The writer's rounds so far (its /srv/chaos/count), or null. */
async function writerRounds(root: string): Promise<number | null> {
  const n = Number.parseInt(await readFile(join(root, CHAOS_DIR, 'count'), 'utf8').catch(() => ''), 10);
  return Number.isFinite(n) ? n : null;
}

/** Processes of the writer in the container whose init is `initPid` (its first-boot guard failed if any). */
async function writersIn(initPid: number): Promise<string[]> {
  return (await descendants(initPid)).filter((p) => p.cmd.includes(CHAOS_SCRIPT)).map((p) => `${p.pid} ${p.cmd}`);
}

async function initPidOn(lab: LabInfo, host: string, name: string): Promise<number | null> {
  const h = lab.hosts.find((x) => x.name === host)!;
  const r = await hostExec(host, ['lxc-info', '-P', h.lxcPath, '-n', name, '-pH'], { timeoutMs: 10_000, okExitCodes: [0, 1] }).catch(() => null);
  const pid = Number(r?.stdout.trim());
  return r?.exitCode === 0 && pid > 0 ? pid : null;
}

function sleep(ms: number): Promise<void> {
  return new Promise<void>((r) => setTimeout(r, ms));
}
const secs = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

// ---- the lab --------------------------------------------------------------------------------

async function labNamesPresent(): Promise<string[]> {
  const ns = (await run('ip', ['netns', 'list'], { timeoutMs: 10_000 })).stdout;
  const links = (await run('ip', ['-o', 'link', 'show'], { timeoutMs: 10_000 })).stdout;
  const names = [
    ...ns.split('\n').map((l) => l.trim().split(' ')[0] ?? ''),
    ...links.split('\n').map((l) => l.split(': ')[1]?.split('@')[0] ?? ''),
  ];
  return names.filter((n) => /^(ferry-h\d|ferry-client|fyh\d|fyclient|ferrysw0)$/.test(n));
}

/**
 * Brings up this run's lab in its own state dir. Another lab (someone else's state dir) holds the
 * same kernel names: then wait, bounded, and try again. Never `down` anything but our own.
 */
async function acquireLab(o: ChaosOptions, say: (s: string) => void): Promise<LabInfo> {
  const deadline = Date.now() + o.labWaitMs;
  let told = false;
  for (;;) {
    if (o.signal?.aborted) throw new Error('aborted while waiting for the lab');
    const present = await labNamesPresent();
    if (present.length === 0) {
      try {
        return await labUp({ hosts: 2, live: o.mode === 'live' });
      } catch (e) {
        const code = (e as { code?: string }).code;
        if (code !== 'LAB_CONFLICT' && code !== 'LAB_ALREADY_UP') throw e;
        say(`chaos: lab up refused (${code}); waiting`);
      }
    } else if (!told) {
      say(`chaos: another lab is up (${present.join(', ')}); waiting up to ${secs(deadline - Date.now())} for it to go`);
      told = true;
    }
    if (Date.now() > deadline) throw new Error(`another lab kept the kernel names (${present.join(', ')}) for ${secs(o.labWaitMs)}; try later`);
    await sleep(10_000 + Math.random() * 5000);
  }
}

/**
 * Our lab's namespaces and switch are still the ones we made: a `lab down` of another state dir
 * sweeps them by name, and its `lab up` makes new ones under the same names.
 */
async function labIntact(identity: string): Promise<boolean> {
  return !identity.includes('missing') && (await labIdentity().catch(() => '')) === identity;
}

// ---- evidence -------------------------------------------------------------------------------

const LEVELS: Record<number, string> = { 30: 'info', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

/** Warn-and-above lines about this migration (or any error in its time window) from the daemons' logs. */
async function logExcerpt(lab: LabInfo, id: string | null, from: number, to: number, max = 40): Promise<string[]> {
  const out: { time: number; line: string }[] = [];
  for (const file of ['scheduler', 'worker-h1', 'worker-h2']) {
    const text = await readFile(join(lab.stateDir, 'logs', `${file}.log`), 'utf8').catch(() => '');
    for (const raw of text.split('\n')) {
      if (!raw.startsWith('{')) continue;
      let l: Record<string, unknown>;
      try {
        l = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        continue;
      }
      const time = Number(l.time ?? 0);
      const level = Number(l.level ?? 0);
      const mine = id !== null && l.migrationId === id;
      const inWindow = time >= from && time <= to;
      const keep = (mine && level >= 40) || (inWindow && level >= 50) || (inWindow && /started|stopping/.test(String(l.msg)) && !l.migrationId);
      if (!keep) continue;
      const err = (l.error ?? l.err) as { code?: string; message?: string } | undefined;
      const bits = [
        `${file}`,
        `+${((time - from) / 1000).toFixed(2)}s`,
        LEVELS[level] ?? String(level),
        String(l.msg ?? ''),
        ...(['step', 'phase', 'attempt', 'jobId'] as const).filter((k) => l[k] !== undefined).map((k) => `${k}=${String(l[k])}`),
        ...(err ? [`${err.code ?? ''} ${String(err.message ?? '').slice(0, 300)}`] : []),
      ];
      out.push({ time, line: bits.join(' ') });
    }
  }
  out.sort((a, b) => a.time - b.time);
  return out.slice(0, max).map((x) => x.line);
}

async function switchPort(lab: LabInfo, mac: string): Promise<string | null> {
  try {
    const r = await run('bridge', ['fdb', 'show', 'br', lab.switch.bridge], { timeoutMs: 5000 });
    const line = r.stdout.split('\n').find((l) => l.toLowerCase().startsWith(`${mac.toLowerCase()} dev `));
    const port = line?.split(' ')[2] ?? null;
    return lab.hosts.find((h) => h.uplink === port)?.name ?? port;
  } catch {
    return null;
  }
}

function stepLines(rec: StoredRecord | null): string[] {
  if (!rec || rec.state === 'rejected') return [];
  const fmt = (phase: string) => (s: StepRecord) =>
    `${phase}/${s.name}@${s.host} ${s.state} attempts=${s.attempts}${s.startedAt && s.endedAt ? ` ${secs(s.endedAt - s.startedAt)}` : ''}${s.error ? ` ${s.error.code}: ${s.error.message.slice(0, 200)}` : ''}`;
  return [...rec.steps.map(fmt('forward')), ...rec.rollback.map(fmt('rollback'))];
}

/**
 * rsync leftovers inside a copy: rsync's temporary files (`.name.XXXXXX`), with size and mtime.
 * (Partial files live beside the container dir, never in it.)
 */
async function rsyncLeftovers(root: string): Promise<string[]> {
  try {
    const r = await run('find', [root, '-xdev', '-regextype', 'posix-extended', '-regex', '.*/\\.[^/]+\\.[A-Za-z0-9]{6}', '-printf', '%p %s B mtime %TT\\n'], { timeoutMs: 30_000 });
    return r.stdout
      .split('\n')
      .filter(Boolean)
      .slice(0, 20)
      .map((l) => (l.startsWith(root) ? l.slice(root.length) : l));
  } catch (e) {
    return [`find failed: ${(e as Error).message}`];
  }
}

// ---- one trial ------------------------------------------------------------------------------

interface RunEnv {
  o: ChaosOptions;
  lab: LabInfo;
  say: (s: string) => void;
  evidenceDir: string;
  expectedMs: number;
}

function outcomeOf(state: string | undefined): TrialOutcome {
  if (state === 'done') return 'done';
  if (state === 'rolled-back') return 'rolled-back';
  if (state === 'paused') return 'paused';
  if (state === 'rejected') return 'other';
  return 'stuck';
}

async function runTrial(env: RunEnv, fault: Fault, n: number): Promise<TrialResult> {
  const { o, lab, say } = env;
  const rng = trialRng(o.seed, fault.id, n);
  const name = `c${fault.id}-${n}`;
  const events: FaultEvent[] = [];
  const state: Record<string, unknown> = {};
  let watcher: RecordWatcher | undefined;
  let t0 = Date.now();
  const note = (what: string) => {
    const e = { at: Number(((Date.now() - t0) / 1000).toFixed(2)), where: watcher ? stepNow(watcher.view.rec) : 'before submit', what };
    events.push(e);
    say(`    +${e.at.toFixed(2)}s [${e.where}] ${what}`);
  };
  const base: TrialResult = {
    fault: fault.id,
    trial: n,
    container: name,
    migrationId: null,
    state: 'not started',
    outcome: 'other',
    expected: fault.expect,
    ok: false,
    problems: [],
    migrationMs: null,
    downtimeMs: 0,
    lost: false,
    duplicated: false,
    dataMismatch: false,
    serving: false,
    servedVia: null,
    finalPlacement: {},
    events,
    timeline: [],
    placementTimeline: [],
    bothActivePolls: [],
    suspectPolls: [],
    monitorPolls: 0,
    monitorErrors: 0,
    arpRuns: 0,
    arpDuplicates: [],
    digestBefore: '',
    digestsAfter: {},
    dataCheck: {},
    writerRounds: { before: null, after: null },
    leftovers: {},
    receiversAtEnd: [],
    manifestDigestBefore: '',
    manifestDigestsAfter: {},
    steps: [],
    logExcerpt: [],
  };

  for (const s of await ensureHealthy(lab)) say(`    (before the trial) ${s}`);

  // --- the container, its digest, the watchers
  const m = await manifests();
  const live = o.mode === 'live';
  let ct: LabContainer;
  try {
    ct = await labContainerCreate({ name, host: 'h1', sizeMb: o.sizeMb, writer: 'first-boot', ...(live ? { memoryMb: 32 } : {}), ...(fault.container ?? {}) });
  } catch (e) {
    await removeLabContainer(name, { forget: true }).catch(() => undefined);
    return { ...base, setupError: `container create failed: ${(e as Error).message}`, problems: [`setup failed: ${(e as Error).message}`] };
  }
  let beforeEntries: unknown[] = [];

  const probe = new ClientProbe(lab.client.netns, `http://${ct.ip}/`, 20);
  const monitor = new PlacementMonitor(lab, name, 150);
  const arp = new ArpWatcher(ct.ip, 1000);
  const trialAbort = new AbortController();
  const onRunAbort = () => trialAbort.abort();
  o.signal?.addEventListener('abort', onRunAbort, { once: true });
  let result: TrialResult = base;
  let resetDone = false;
  const reset = async () => {
    if (resetDone) return;
    resetDone = true;
    try {
      await fault.reset({ lab, state, note });
    } catch (e) {
      note(`reset failed: ${(e as Error).message}`);
    }
  };
  try {
    // The writer runs from the first boot on; the digest before leaves its dir out.
    for (let i = 0; !(await writersIn(ct.pid)).length; i++) {
      if (i >= 20) throw new Error(`the writer (/${CHAOS_SCRIPT}) does not run in ${name} on h1`);
      await sleep(100);
    }
    beforeEntries = await manifestOutsideWriter(m, ct.rootfs);
    base.digestBefore = contentDigest(beforeEntries, live);
    base.manifestDigestBefore = fullDigest(m, beforeEntries);
    base.writerRounds.before = await writerRounds(ct.rootfs);
    if (fault.prepare) await fault.prepare({ lab, ct, rng, expectedMs: env.expectedMs, note, state });
    if (!(await probe.waitForAnswer(10_000))) throw new Error(`the client gets no answer from ${ct.ip} before the migration`);
    monitor.start();
    arp.start();

    // --- submit, then the fault and the supervisor, concurrently with the wait for the end
    t0 = Date.now();
    // --keep-source: after `done` the source's copy stays on h1, stopped right after the final pass.
    const args = ['migrate', name, '--from', 'h1', '--to', 'h2', '--bwlimit', String(o.bwlimitKBps), '--keep-source', '--json', ...(o.verify ? ['--verify'] : []), ...(o.mode ? ['--mode', o.mode] : [])];
    let id: string | null;
    if (fault.submit) {
      id = await fault.submit({ lab, ct, rng, expectedMs: env.expectedMs, note, state });
      t0 = Date.now();
    } else {
      const sub = await ferryCli(lab, args, 60_000);
      id = (() => {
        try {
          return (JSON.parse(sub.stdout.trim().split('\n').at(-1) ?? '') as { id?: string }).id ?? null;
        } catch {
          return null;
        }
      })();
      if (sub.exitCode !== 0 || !id) throw new Error(`ferry migrate failed (exit ${sub.exitCode}): ${sub.stderr.trim().slice(-400)}`);
    }
    base.migrationId = id;
    watcher = new RecordWatcher(lab.redisUrl, lab.prefix).follow(id);
    const ctx: FaultCtx = { lab, ct, rng, watcher, t0, expectedMs: env.expectedMs, signal: trialAbort.signal, note, state, ...(o.linkDownMs ? { linkDownMs: o.linkDownMs } : {}) };
    const injection = fault.inject(ctx).catch((e: unknown) => note(`injection failed: ${(e as Error).message}`));

    const deadline = t0 + o.trialTimeoutMs;
    while (Date.now() < deadline && !o.signal?.aborted && !ended(watcher.view.rec)) await sleep(100);
    const tEnd = Date.now();
    trialAbort.abort();
    const receiversAtEnd = (await findProcs('rsync', '--server', `/${name}/`)).map((p) => `${p.pid} ${p.cmd}`);
    // The supervisor finishes its restarts (and a link outage its time) before the verdict.
    await Promise.race([injection, sleep(60_000)]);

    // --- the outcome, as the CLI reports it
    const st = await ferryCli(lab, ['status', id, '--json'], 30_000).catch((e: Error) => ({ exitCode: -1, stdout: '', stderr: e.message }) as RunResult);
    let rec: StoredRecord | null = null;
    try {
      rec = st.exitCode === 0 ? ((JSON.parse(st.stdout) as { record: StoredRecord }).record ?? null) : null;
    } catch {
      rec = null;
    }
    if (!rec && st.exitCode !== 0) note(`ferry status ${id} --json: exit ${st.exitCode}: ${st.stderr.trim().slice(-300)}`);
    rec ??= watcher.view.rec;
    const stateNow = rec?.state ?? 'no record';
    const interrupted = !ended(rec) && !!o.signal?.aborted;
    const outcome: TrialOutcome = ended(rec) ? outcomeOf(rec?.state) : interrupted ? 'other' : 'stuck';

    // --- serving, placement, data
    const serving = outcome === 'stuck' ? probe.answeredSince(tEnd) : await probe.waitForAnswer(5000, tEnd);
    const tWindow = Math.min(Date.now(), tEnd + 5000);
    // The monitor goes on through the after-phase below (a target that comes back must not start it).
    const bothAtEnd = monitor.both.length;
    const arpDupAtEnd = arp.duplicates.length;
    let finalPlacement: Record<string, string> = {};
    let finalBoth = false;
    for (let i = 0; i < 3; i++) {
      finalPlacement = await placements(lab, name);
      if (Object.values(finalPlacement).filter((s) => ACTIVE.has(s)).length >= 2) finalBoth = true;
      if (i < 2) await sleep(300);
    }
    const runningOn = Object.entries(finalPlacement)
      .filter(([, s]) => ACTIVE.has(s))
      .map(([h]) => h);
    const digestsAfter: Record<string, string> = {};
    const dataCheck: Record<string, string> = {};
    const manifestDigestsAfter: Record<string, string> = {};
    const leftovers: Record<string, string[]> = {};
    const mismatched: string[] = [];
    const dataProblems: string[] = [];
    let manifestDiff: string[] | undefined;
    const rootOf = (h: string) => join(lab.hosts.find((x) => x.name === h)!.lxcPath, name, 'rootfs');
    // After `done`, the reference is the source's copy kept on h1: stopped right after the final
    // pass, so exactly what the target had to receive. It is not RUNNING/FROZEN, so the placement
    // checks above (ACTIVE) do not count it.
    let kept: unknown[] | undefined;
    let keptSourceDigest: string | undefined;
    if (outcome === 'done' && !runningOn.includes('h1') && !fault.submit) {
      if (finalPlacement.h1 === 'STOPPED' && existsSync(rootOf('h1'))) {
        try {
          kept = await m.manifest(rootOf('h1'));
          keptSourceDigest = contentDigest(kept, live);
          manifestDigestsAfter['h1 (kept)'] = fullDigest(m, kept);
          // Outside the writer's dir the source must be as before the trial: ferry changed nothing there.
          const outside = outsideWriterDir(kept);
          if (contentDigest(outside, live) !== base.digestBefore) {
            mismatched.push('h1 (kept source)');
            dataProblems.push('the kept source differs from the tree before the trial outside /srv/chaos');
            manifestDiff = ['h1 (kept source) vs before the trial, outside /srv/chaos:', ...m.diffManifests(asCompared(beforeEntries), asCompared(outside), 15)];
          }
        } catch (e) {
          dataProblems.push(`the kept source on h1 could not be listed: ${(e as Error).message}`);
        }
      } else {
        dataProblems.push(`no kept source to compare with: h1 is ${finalPlacement.h1 ?? '?'}${existsSync(rootOf('h1')) ? '' : ', no rootfs'} after a --keep-source migration`);
      }
    }
    const copies = runningOn.length ? runningOn : lab.hosts.map((h) => h.name).filter((h) => existsSync(rootOf(h)));
    for (const h of copies) {
      const root = rootOf(h);
      try {
        if (kept && h !== 'h1') {
          // Restart mode: the target's copy does not write (first boot only), so all of it must be
          // the kept source. Live mode: the writer's process goes on on the target (that is the
          // point), so /srv/chaos moves on there; everything else must be the kept source.
          const entries = live ? await manifestOutsideWriter(m, root) : await m.manifest(root);
          const reference = live ? outsideWriterDir(kept) : kept;
          digestsAfter[h] = contentDigest(entries, live);
          manifestDigestsAfter[h] = fullDigest(m, entries);
          dataCheck[h] = live
            ? 'outside /srv/chaos (its writer runs on), with the source kept stopped on h1 (as at the dump)'
            : 'all of it, with the source kept stopped on h1 (as at the freeze)';
          if (digestsAfter[h] !== contentDigest(reference, live) && runningOn.includes(h)) {
            mismatched.push(h);
            manifestDiff = [...(manifestDiff ?? []), `${h} vs the kept source (h1):`, ...m.diffManifests(asCompared(reference), asCompared(entries), 15)];
          }
        } else {
          // A source that runs on (rolled back) keeps writing in /srv/chaos: everything else must be as before.
          const entries = await manifestOutsideWriter(m, root);
          digestsAfter[h] = contentDigest(entries, live);
          manifestDigestsAfter[h] = fullDigest(m, entries);
          dataCheck[h] = 'outside /srv/chaos, with the tree before the trial';
          if (digestsAfter[h] !== base.digestBefore && runningOn.includes(h)) {
            mismatched.push(h);
            manifestDiff = [...(manifestDiff ?? []), `${h} vs before the trial, outside /srv/chaos:`, ...m.diffManifests(asCompared(beforeEntries), asCompared(entries), 15)];
          }
        }
      } catch (e) {
        digestsAfter[h] = `error: ${(e as Error).message}`;
        if (runningOn.includes(h)) mismatched.push(h);
      }
      const left = await rsyncLeftovers(root);
      if (left.length) leftovers[h] = left;
    }
    // Restart mode: the target's copy must not write (the writer runs on the first boot only).
    // Live mode: the writer's process must run on in the target's copy, its rounds going on from
    // where the dump left them (its memory and files came along).
    let writerOnTarget: number | null = null;
    if (outcome === 'done' && runningOn.includes('h2')) {
      const pid = await initPidOn(lab, 'h2', name);
      const writers = pid ? await writersIn(pid) : [];
      if (!live && writers.length) dataProblems.push(`the writer runs in the target's copy (its first-boot guard failed): ${writers.join('; ')}`);
      if (live) {
        if (!writers.length) dataProblems.push("the writer's process does not run in the target's copy after a live migration");
        writerOnTarget = await writerRounds(rootOf('h2'));
      }
    }
    const writerRoundsAfter = kept ? await writerRounds(rootOf('h1')) : runningOn.includes('h1') ? await writerRounds(rootOf('h1')) : null;
    const writerRoundsNow = { before: base.writerRounds.before, after: writerRoundsAfter, ...(live ? { onTarget: writerOnTarget } : {}) };
    if (kept && (writerRoundsAfter ?? 0) <= (base.writerRounds.before ?? 0)) {
      dataProblems.push(`the writer made no change during the migration (rounds ${base.writerRounds.before} → ${writerRoundsAfter}): the data check proved nothing`);
    }
    if (kept && live && writerOnTarget !== null && writerOnTarget < (writerRoundsAfter ?? 0)) {
      dataProblems.push(`the writer's rounds went back on the target (${writerOnTarget} < ${writerRoundsAfter} at the dump)`);
    }
    // The kept source has served its purpose: remove it (h1's copy only, and only while stopped).
    if (kept && (await placementOn(lab, 'h1', name)) === 'STOPPED') {
      const h1 = lab.hosts.find((x) => x.name === 'h1')!;
      const r = await hostExec('h1', ['lxc-destroy', '-P', h1.lxcPath, '-n', name], { timeoutMs: 30_000, okExitCodes: [0, 1] }).catch((e: Error) => ({ exitCode: -1, stderr: e.message }));
      if (r.exitCode !== 0) note(`kept source on h1 not removed: ${r.stderr.trim().slice(-200)}`);
    }
    const lost = runningOn.length === 0;
    const duplicated = bothAtEnd > 0 || arpDupAtEnd > 0 || finalBoth;
    const dataMismatch = mismatched.length > 0;
    const servedVia = await switchPort(lab, ct.mac);

    const problems: string[] = [];
    if (lost) problems.push(`lost: runs nowhere at the end (${JSON.stringify(finalPlacement)})`);
    if (duplicated) {
      problems.push(
        `duplicated: ${bothAtEnd} poll(s) saw it RUNNING/FROZEN on two hosts${arpDupAtEnd ? `, ${arpDupAtEnd} arping run(s) got more replies than requests` : ''}${finalBoth ? ', active on both at the end' : ''}`,
      );
    }
    if (dataMismatch) problems.push(`data mismatch on ${mismatched.join(', ')}`);
    problems.push(...dataProblems);
    for (const h of runningOn) {
      if (leftovers[h]) problems.push(`rsync leftovers in the running copy on ${h}: ${leftovers[h]!.slice(0, 3).join('; ')}`);
    }
    if (interrupted) problems.push(`interrupted (run stopped) while ${stepNow(rec)}`);
    else if (outcome !== fault.expect) problems.push(`outcome ${outcome}${outcome === 'stuck' ? ` (state ${stateNow} after ${secs(o.trialTimeoutMs)})` : ''}, expected ${fault.expect}`);
    const expectHost = fault.expect === 'done' ? 'h2' : 'h1';
    if (outcome === fault.expect) {
      if (!serving) problems.push(`not serving: the client got no answer within 5 s after the end`);
      if (!runningOn.includes(expectHost)) problems.push(`runs on ${runningOn.join(', ') || 'no host'}, expected ${expectHost}`);
      const extra = fault.check?.(rec, state);
      if (extra) problems.push(extra);
    }
    result = {
      ...base,
      state: stateNow,
      outcome,
      ok: problems.length === 0,
      problems,
      migrationMs: rec?.endedAt && rec.createdAt ? rec.endedAt - rec.createdAt : null,
      downtimeMs: probe.longestGap(t0, tWindow),
      lost,
      duplicated,
      dataMismatch,
      serving,
      servedVia,
      finalPlacement,
      timeline: watcher.timeline.map((x) => `+${((x.t - t0) / 1000).toFixed(2)}s ${x.where}`),
      placementTimeline: monitor.timeline(t0),
      bothActivePolls: monitor.both.slice(0, 10),
      suspectPolls: monitor.suspect.slice(0, 10),
      monitorPolls: monitor.polls.length,
      arpRuns: arp.runs.length,
      arpDuplicates: arp.duplicates.slice(0, 10),
      digestsAfter,
      dataCheck,
      ...(keptSourceDigest ? { keptSourceDigest } : {}),
      writerRounds: writerRoundsNow,
      manifestDigestsAfter,
      leftovers,
      receiversAtEnd,
      ...(manifestDiff ? { manifestDiff } : {}),
      ...(rec?.error ? { error: rec.error } : {}),
      steps: stepLines(rec),
    };

    // --- after the fault is undone: a stuck migration may recover; a target that comes back
    //     (fault 6) must not start its stale copy. The monitor keeps watching meanwhile.
    if (!o.signal?.aborted && (outcome === 'stuck' || fault.observeAfterResetMs)) {
      await reset();
      const until = Date.now() + (outcome === 'stuck' ? o.postRecoveryMs : fault.observeAfterResetMs!);
      const stopEarly = () => outcome === 'stuck' && ended(watcher!.view.rec);
      while (Date.now() < until && !o.signal?.aborted && !stopEarly()) await sleep(200);
      const after = watcher.view.rec;
      if (outcome === 'stuck') {
        result.afterRecovery = ended(after)
          ? `after the fault was undone it ended ${after!.state} at +${secs(Date.now() - t0)}${after?.error ? ` (${after.error.code}: ${after.error.message.slice(0, 200)})` : ''}`
          : `still ${stepNow(after)} ${secs(o.postRecoveryMs)} after the fault was undone`;
      } else {
        const left = lab.hosts.filter((h) => h.name !== expectHost && existsSync(join(h.lxcPath, name))).map((h) => h.name);
        result.afterRecovery = `${secs(fault.observeAfterResetMs!)} after the fault was undone: state ${after?.state ?? '?'}, placement ${JSON.stringify(await placements(lab, name))}, ${left.length ? `stale copy still on ${left.join(', ')}` : 'no stale copy left'}`;
      }
      note(result.afterRecovery);
      result.steps = stepLines(after ?? rec);
    }
    await Promise.all([monitor.stop(), arp.stop()]);
    const lateBoth = monitor.both.slice(bothAtEnd);
    const lateArp = arp.duplicates.slice(arpDupAtEnd);
    if (lateBoth.length || lateArp.length) {
      result.duplicated = true;
      result.ok = false;
      result.problems.push(`duplicated after the fault was undone: ${lateBoth.length} poll(s) RUNNING/FROZEN on two hosts, ${lateArp.length} arping run(s) with extra replies`);
    }
    result.placementTimeline = monitor.timeline(t0);
    result.bothActivePolls = monitor.both.slice(0, 10);
    result.suspectPolls = monitor.suspect.slice(0, 10);
    result.monitorPolls = monitor.polls.length;
    result.monitorErrors = monitor.errors;
    result.arpRuns = arp.runs.length;
    result.arpDuplicates = arp.duplicates.slice(0, 10);
    result.logExcerpt = await logExcerpt(lab, id, t0, Date.now());
  } catch (e) {
    result = { ...result, setupError: (e as Error).message, problems: [...result.problems, `trial error: ${(e as Error).message}`], ok: false };
  } finally {
    trialAbort.abort();
    o.signal?.removeEventListener('abort', onRunAbort);
    await Promise.all([monitor.stop(), arp.stop(), probe.stop()]);
    const terminal = ['done', 'rolled-back', 'rejected'].includes(result.state);
    // Container first (it may sit on fault 7's small disk), then the fault.
    await removeLabContainer(name, { forget: terminal }).catch((e: Error) => note(`container removal failed: ${e.message}`));
    await reset();
    await watcher?.close();
  }
  return result;
}

// ---- the run --------------------------------------------------------------------------------

function median(xs: number[]): number | null {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : Math.round((s[mid - 1]! + s[mid]!) / 2);
}

export function summarizeFault(f: Fault, rs: TrialResult[]): FaultSummary {
  const count = (p: (r: TrialResult) => boolean) => rs.filter(p).length;
  const times = rs.map((r) => r.migrationMs).filter((x): x is number => x !== null);
  const s: FaultSummary = {
    id: f.id,
    name: f.name,
    expected: f.expect,
    trials: rs.length,
    done: count((r) => r.outcome === 'done'),
    rolledBack: count((r) => r.outcome === 'rolled-back'),
    paused: count((r) => r.outcome === 'paused'),
    stuck: count((r) => r.outcome === 'stuck'),
    other: count((r) => r.outcome === 'other'),
    lost: count((r) => r.lost),
    duplicated: count((r) => r.duplicated),
    dataMismatch: count((r) => r.dataMismatch),
    unexpected: count((r) => !r.ok),
    medianMs: median(times),
    maxMs: times.length ? Math.max(...times) : null,
    maxDowntimeMs: rs.length ? Math.max(...rs.map((r) => r.downtimeMs)) : null,
    ok: rs.length > 0 && rs.every((r) => r.ok),
    migrations: rs.map((r) => r.migrationId),
    failures: rs.filter((r) => !r.ok).map((r) => ({ trial: r.trial, migrationId: r.migrationId, problems: r.problems })),
  };
  return s;
}

/** Runs the suite. Sets FERRY_STATE_DIR / FERRY_PREFIX of this process to private ones. */
export async function runChaos(o: ChaosOptions): Promise<ChaosReport> {
  const say = o.log ?? ((s: string) => process.stderr.write(`${s}\n`));
  const faults = o.faults.map((id) => {
    const f = faultById(id);
    if (!f) throw new Error(`no fault ${id} (faults are 0..7; 0 is the no-fault control)`);
    return f;
  });
  const evidenceDir = o.evidenceDir ?? (await mkdtemp(join(tmpdir(), 'ferry-chaos-evidence-')));
  await mkdir(join(evidenceDir, 'trials'), { recursive: true });

  // A private state dir (so a private embedded Redis) and key prefix, like test/support/lab.ts isolate().
  const saved = { dir: process.env.FERRY_STATE_DIR, prefix: process.env.FERRY_PREFIX, redis: process.env.REDIS_URL, fmt: process.env.FERRY_LOG_FORMAT };
  const stateDir = await mkdtemp(join(tmpdir(), 'ferry-chaos-state-'));
  process.env.FERRY_STATE_DIR = stateDir;
  process.env.FERRY_PREFIX = `chaos${randomBytes(3).toString('hex')}`;
  delete process.env.REDIS_URL;
  process.env.FERRY_LOG_FORMAT = 'json';

  const results: TrialResult[] = [];
  let aborted: string | undefined;
  let lab: LabInfo | undefined;
  let identity = '';
  try {
    say(`chaos: seed ${o.seed}, faults ${o.faults.join(',')}, ${o.trials} trial(s) each, ${o.sizeMb} MiB at ${o.bwlimitKBps} KiB/s; evidence in ${evidenceDir}`);
    lab = await acquireLab(o, say);
    identity = await labIdentity();
    say(`chaos: lab up (state ${stateDir}, redis ${lab.redisUrl})`);
    const expectedMs = Math.round(((o.sizeMb * 1024) / o.bwlimitKBps) * 1000) + 3000;
    const env: RunEnv = { o, lab, say, evidenceDir, expectedMs };
    outer: for (const f of faults) {
      for (let n = 1; n <= o.trials; n++) {
        if (o.signal?.aborted) {
          aborted = 'stopped by signal';
          break outer;
        }
        if (!(await labIntact(identity))) {
          aborted = 'our lab was removed by someone else (a `lab down` of another state dir sweeps the same kernel names)';
          break outer;
        }
        say(`fault ${f.id} (${f.name}) trial ${n}/${o.trials}`);
        const t = Date.now();
        const r = await runTrial(env, f, n);
        if (!(await labIntact(identity))) {
          r.problems.push('our lab was removed by someone else during the trial: result not valid');
          r.ok = false;
          aborted = 'our lab was removed by someone else during a trial (a `lab down` of another state dir sweeps the same kernel names)';
        }
        results.push(r);
        await writeFile(join(evidenceDir, 'trials', `${f.id}-${n}.json`), `${JSON.stringify(r, null, 2)}\n`);
        say(
          `  → ${r.outcome}${r.migrationMs !== null ? ` in ${secs(r.migrationMs)}` : ''}, downtime ${secs(r.downtimeMs)}, ${r.migrationId ?? 'no id'}; ${r.ok ? 'OK' : `FAIL: ${r.problems.join('; ')}`} (trial ${secs(Date.now() - t)})`,
        );
        if (aborted) break outer;
      }
    }
  } catch (e) {
    aborted = `run failed: ${(e as Error).message}`;
    say(`chaos: ${aborted}`);
  } finally {
    // Ours only: a lab.json in our private state dir means our `up` got past its conflict check.
    let downOk = true;
    if (lab || existsSync(join(stateDir, 'lab', 'lab.json'))) {
      await cp(join(stateDir, 'lab', 'logs'), join(evidenceDir, 'logs'), { recursive: true }).catch(() => undefined);
      await cp(join(stateDir, 'redis', 'redis.log'), join(evidenceDir, 'logs', 'redis.log')).catch(() => undefined);
      if (!identity || (await labIntact(identity))) {
        say('chaos: removing the lab…');
        await labDown().catch((e: Error) => {
          downOk = false;
          say(`chaos: lab down failed: ${e.message} (remove it with: FERRY_STATE_DIR=${stateDir} ferry lab down)`);
        });
      } else {
        // `lab down` would now remove whatever lab holds the names: someone else's.
        say('chaos: our lab was replaced by another one; removing only what is ours');
        for (const n of await abandonReplacedLab().catch((e: Error) => [`failed: ${e.message}`])) say(`chaos:   ${n}`);
      }
    }
    if (downOk) await rm(stateDir, { recursive: true, force: true }).catch(() => undefined);
    for (const [k, v] of [['FERRY_STATE_DIR', saved.dir], ['FERRY_PREFIX', saved.prefix], ['REDIS_URL', saved.redis], ['FERRY_LOG_FORMAT', saved.fmt]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
  const summaries = faults.map((f) => summarizeFault(f, results.filter((r) => r.fault === f.id)));
  const report: ChaosReport = {
    seed: o.seed,
    trials: o.trials,
    settings: { sizeMb: o.sizeMb, bwlimitKBps: o.bwlimitKBps, trialTimeoutMs: o.trialTimeoutMs, verify: !!o.verify },
    faults: summaries,
    ok: !aborted && summaries.every((s) => s.ok && s.trials === o.trials),
    evidenceDir,
    ...(aborted ? { aborted } : {}),
  };
  await writeFile(join(evidenceDir, 'report.json'), `${JSON.stringify(report, null, 2)}\n`).catch(() => undefined);
  return report;
}
