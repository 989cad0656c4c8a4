import { ValidationError } from '../errors/index.js';
import { parseRestoreRequest } from '../checkpoint-request.js';
import { expectFromSource, layout, step, type Wiring, type Workflow } from './workflow.js';

/**
 * Restore a checkpointed container (`ferry checkpoint`) from its images.
 *
 * In place (`to` = `from`): one step restores it on its host and removes the images after a
 * verified start; a failed restore leaves it stopped with its checkpoint as it was.
 *
 * On another host: a migration of a stopped container whose checkpoint dir travels inside its
 * container dir, started from those images: both sides checked (the source must be checkpointed),
 * one copy, a final pass with the digest the copy must match, restore from the images on the
 * target, announce, remove the source. Until the target was asked to restore, a failure removes
 * the target copy and leaves the checkpointed source as it was (nothing there is changed before).
 */
type W = Wiring<'restore'>;
const base = (w: W) => w.on(w.request.container);

const inPlace = step('checkpoint-restore', 'source', (w: W) => base(w), { attempts: 3 });

const preflightSource = step('preflight', 'source', (w: W) => ({ ...base(w), role: 'source', peer: w.hosts.target, requireCheckpoint: true }));
const preflightTarget = step('preflight', 'target', (w: W) => ({ ...base(w), role: 'target', peer: w.hosts.source, expect: expectFromSource(w.output('preflight', 'source')) }));
/** A stopped container: one pass (the checkpoint dir goes with it). */
const copy = step('rsync-transfer', 'source', (w: W) => ({ ...base(w), peer: w.hosts.target, precopy: {}, wasRunning: false }), { attempts: 8 });
/** At rest already: the final pass and the digest the copy must match; the source is not touched. */
const finalPass = step('checkpoint', 'source', (w: W) => ({ ...base(w), peer: w.hosts.target, mode: 'restart', wasRunning: false, verify: w.request.verify }), { attempts: 6 });
const restoreOnTarget = step('restore', 'target', (w: W) => {
  const cp = w.output('checkpoint');
  const ip = w.output('preflight', 'source')?.ip;
  return {
    ...base(w),
    source: w.hosts.source,
    method: 'dump',
    images: 'checkpoint',
    start: true,
    ...(cp?.manifestDigest ? { expectManifestDigest: cp.manifestDigest, verify: cp.verify ?? 'full' } : {}),
    ...(ip ? { ip } : {}),
  };
});
const announce = step('arp-refresh', 'target', (w: W) => ({ ...base(w), ip: w.output('preflight', 'source')?.ip }));
const cleanup = step('cleanup', 'source', (w: W) => ({ ...base(w), keepSource: false }));
const discardTarget = step('discard-target', 'target', (w: W) => ({ ...base(w), keepCopy: false }));
/** The source was stopped throughout: this only drops the operation's records there. */
const settleSource = step('resume-source', 'source', (w: W) => ({ ...base(w), wasRunning: false }));

export const restore: Workflow<'restore'> = {
  kind: 'restore',
  parse: parseRestoreRequest,
  hostNames: (req) => [...new Set([req.from, req.to])],
  hosts: (req, peer) => ({ source: peer(req.from), target: peer(req.to) }),
  holds: (req) => [req.container],
  steps: [inPlace, preflightSource, preflightTarget, copy, finalPass, restoreOnTarget, announce, cleanup, discardTarget, settleSource],
  plan(req, caps) {
    const c = caps(req.to);
    if (!c.checkpoint) {
      throw new ValidationError([{ path: 'to', message: `${req.to} cannot restore a checkpoint (${c.checkpointReason ?? 'no checkpoint support'})` }]);
    }
    const hostOf = (role: string) => (role === 'target' ? req.to : req.from);
    if (req.from === req.to) {
      return layout<'restore'>(hostOf, { forward: [inPlace], pointOfNoReturn: inPlace, owner: 'source' });
    }
    return layout<'restore'>(hostOf, {
      forward: [preflightSource, preflightTarget, copy, finalPass, restoreOnTarget, announce, cleanup],
      pointOfNoReturn: restoreOnTarget,
      // The target owns the container from the moment it is asked to start it.
      handoverAt: restoreOnTarget,
      owner: 'source',
      // The copy goes whenever one was made (a restore that failed on the target included); the
      // source was never changed, so it stays checkpointed.
      compensations: [
        { after: copy, run: discardTarget },
        { after: finalPass, run: settleSource },
      ],
    });
  },
};
