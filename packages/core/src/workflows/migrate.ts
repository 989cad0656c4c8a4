import { ValidationError } from '../errors/index.js';
import { parseMigrationRequest } from '../request.js';
import { expectFromSource, layout, step, type Wiring, type Workflow } from './workflow.js';

/**
 * A migration: check both hosts, pre-copy the running container, freeze it for the final pass and
 * stop it (or dump it, live), start it on the target, announce it there, remove the source.
 *
 * Until restore has succeeded, a failure undoes what was done: the copy on the target is removed
 * and the source resumes (live: from its dump). Once restore has succeeded (the point of no
 * return) only forward.
 */
type W = Wiring<'migrate'>;

/** Whether the container ran when the migration began (a stopped one is moved stopped). */
const wasRunning = (w: W) => w.output('preflight', 'source')?.wasRunning ?? true;
const bwlimit = (w: W) => (w.request.options.bwlimitKBps === undefined ? {} : { bwlimitKBps: w.request.options.bwlimitKBps });
const base = (w: W) => w.on(w.request.container);

const preflightSource = step('preflight', 'source', (w: W) => ({ ...base(w), role: 'source', peer: w.hosts.target }));

const preflightTarget = step('preflight', 'target', (w: W) => ({ ...base(w), role: 'target', peer: w.hosts.source, expect: expectFromSource(w.output('preflight', 'source')) }));

/** Pre-copy while the container runs; transfers ride out longer outages than other steps. */
const precopy = step(
  'rsync-transfer',
  'source',
  (w: W) => ({
    ...base(w),
    peer: w.hosts.target,
    precopy: w.request.options.precopy,
    wasRunning: wasRunning(w),
    ...(w.request.options.verify === 'changed' && wasRunning(w) ? { indexAhead: true } : {}),
    ...bwlimit(w),
  }),
  { attempts: 8 },
);

/** The target indexes its copy while the container still runs (the default verification's basis). */
const indexCopy = step('index-copy', 'target', (w: W) => base(w));

/** Freeze, final pass, verify, then stop (restart) or dump (live). */
const checkpoint = step(
  'checkpoint',
  'source',
  (w: W) => ({
    ...base(w),
    peer: w.hosts.target,
    mode: w.record.plan.mode ?? 'restart',
    wasRunning: wasRunning(w),
    verify: w.request.options.verify,
    ...bwlimit(w),
  }),
  { attempts: 6 },
);

const restore = step('restore', 'target', (w: W) => {
  const cp = w.output('checkpoint');
  const ip = w.output('preflight', 'source')?.ip;
  return {
    ...base(w),
    source: w.hosts.source,
    method: cp?.method ?? 'stop',
    start: wasRunning(w),
    ...(cp?.manifestDigest ? { expectManifestDigest: cp.manifestDigest, verify: cp.verify ?? 'full' } : {}),
    ...(cp?.metaPatch ? { metaPatch: true } : {}),
    // Announced from restore as soon as it runs only when ARP refresh is asked for.
    ...(ip && w.request.options.arpRefresh ? { ip } : {}),
  };
});

const arpFrom = (role: 'source' | 'target') => step('arp-refresh', role, (w: W) => ({ ...base(w), ip: w.output('preflight', 'source')?.ip }));
const announceOnTarget = arpFrom('target');
/** After a rollback the container is announced from the source again, in case the target had. */
const announceOnSource = arpFrom('source');

const cleanup = step('cleanup', 'source', (w: W) => ({ ...base(w), keepSource: w.request.options.keepSource }));
const discardTarget = step('discard-target', 'target', (w: W) => ({ ...base(w), keepCopy: false }));
const resumeSource = step('resume-source', 'source', (w: W) => ({ ...base(w), wasRunning: wasRunning(w) }));

export const migrate: Workflow<'migrate'> = {
  kind: 'migrate',
  parse: parseMigrationRequest,
  hostNames: (req) => [req.from, req.to],
  hosts: (req, peer) => ({ source: peer(req.from), target: peer(req.to) }),
  holds: (req) => [req.container],
  steps: [preflightSource, preflightTarget, precopy, indexCopy, checkpoint, restore, announceOnTarget, cleanup, discardTarget, resumeSource, announceOnSource],

  /** `auto` picks live migration only where both hosts can checkpoint/restore; else restart. */
  plan(req, caps) {
    const [source, target] = [caps(req.from), caps(req.to)];
    const canLive = source.checkpoint && target.checkpoint;
    const cannot = (
      [
        [req.from, source],
        [req.to, target],
      ] as const
    )
      .filter(([, c]) => !c.checkpoint)
      .map(([h, c]) => `${h}: ${c.checkpointReason ?? 'cannot checkpoint'}`);
    if (req.mode === 'live' && !canLive) {
      throw new ValidationError([{ path: 'mode', message: `live migration needs checkpoint/restore on both hosts (${cannot.join('; ')})` }]);
    }
    const arp = req.options.arpRefresh;
    const modeReason =
      req.mode !== 'auto'
        ? `asked for (--mode ${req.mode})`
        : canLive
          ? `auto: ${req.from} and ${req.to} can both checkpoint/restore`
          : `auto: no live path (${cannot.join('; ')})`;
    return layout<'migrate'>((role) => (role === 'target' ? req.to : req.from), {
      mode: req.mode === 'restart' || !canLive ? 'restart' : 'live',
      modeReason,
      forward: [preflightSource, preflightTarget, precopy, ...(req.options.verify === 'changed' ? [indexCopy] : []), checkpoint, restore, ...(arp ? [announceOnTarget] : []), cleanup],
      pointOfNoReturn: restore,
      // The target becomes the owner the moment it is asked to start the container.
      handoverAt: restore,
      owner: 'source',
      // From the freeze until restore the container runs nowhere.
      downFrom: restore,
      // Once restore has begun the copy may run on the target: it is removed before the source
      // runs again, so the container never runs twice. Before restore nothing runs there (and a
      // late restore is fenced off by the rollback's epoch), so the frozen source comes back first
      // and the copy goes after; a lost target then costs no downtime while its removal waits.
      // Last, the container is announced from the source in case the target had announced it.
      compensations: [
        { after: restore, run: discardTarget },
        { after: checkpoint, run: resumeSource },
        { after: precopy, before: restore, run: discardTarget },
        ...(arp ? [{ after: restore, run: announceOnSource, onlyIfWasRunning: true }] : []),
      ],
    });
  },
};
