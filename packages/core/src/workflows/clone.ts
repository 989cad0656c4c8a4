import { macFromId, parseCloneRequest } from '../clone-request.js';
import { layout, step, type Wiring, type Workflow } from './workflow.js';

/**
 * A clone (`vserver-copy`): check both sides, copy the container (frozen, if asked, while it
 * runs), then give the copy its own name, hostname, MAC and address on the target and start it
 * if the source ran. Until the copy has been started, a failure removes it and thaws the source.
 */
type W = Wiring<'clone'>;

/** Whether the source ran when the clone began (only then is the copy started). */
const wasRunning = (w: W) => w.output('preflight', 'source')?.wasRunning ?? false;
const bwlimit = (w: W) => (w.request.bwlimitKBps === undefined ? {} : { bwlimitKBps: w.request.bwlimitKBps });
/** Source-side steps act on the source container, target-side ones on the new name. */
const onSource = (w: W) => w.on(w.request.container);
const onClone = (w: W) => w.on(w.request.name);
/** `ferry clone` picks a MAC no host uses; a request without one gets one derived from its id. */
const mac = (w: W) => w.request.mac ?? macFromId(w.record.id);

/** A DNS label from a container name: characters a label cannot hold become '-'. */
export function hostnameFor(name: string): string {
  return name.replace(/[^A-Za-z0-9-]/g, '-').replace(/^-+|-+$/g, '').slice(0, 63) || 'clone';
}

/** Without --freeze a running source is refused: its copy would not be consistent. */
const preflightSource = step('preflight', 'source', (w: W) => ({ ...onSource(w), role: 'source', peer: w.hosts.target, refuseRunning: !w.request.freeze }));

const preflightTarget = step('preflight', 'target', (w: W) => {
  const src = w.output('preflight', 'source');
  return { ...onClone(w), role: 'target', peer: w.hosts.source, expect: { ip: w.request.ip, mac: mac(w), sizeBytes: src?.sizeBytes ?? 0, bindMounts: src?.bindMounts ?? [] } };
});

const copy = step('clone-copy', 'source', (w: W) => ({ ...onSource(w), name: w.request.name, peer: w.hosts.target, freeze: w.request.freeze && wasRunning(w), ...bwlimit(w) }));

const identity = step('clone-identity', 'target', (w: W) => ({
  ...onSource(w),
  name: w.request.name,
  source: w.hosts.source,
  hostname: w.request.hostname ?? hostnameFor(w.request.name),
  ip: w.request.ip,
  mac: mac(w),
  start: wasRunning(w),
}));

const discardCopy = step('discard-target', 'target', (w: W) => ({ ...onClone(w), keepCopy: false }));
const resumeSource = step('resume-source', 'source', (w: W) => ({ ...onSource(w), wasRunning: wasRunning(w) }));

export const clone: Workflow<'clone'> = {
  kind: 'clone',
  parse: parseCloneRequest,
  hostNames: (req) => [req.from, req.to],
  hosts: (req, peer) => ({ source: peer(req.from), target: peer(req.to) }),
  // The source (it may be frozen) and the new name (two clones must not race for it).
  holds: (req) => [req.container, req.name],
  steps: [preflightSource, preflightTarget, copy, identity, discardCopy, resumeSource],
  plan: (req) =>
    layout<'clone'>((role) => (role === 'target' ? req.to : req.from), {
      forward: [preflightSource, preflightTarget, copy, identity],
      pointOfNoReturn: identity,
      owner: 'source',
      compensations: [
        { after: copy, run: discardCopy },
        { after: copy, run: resumeSource },
      ],
    }),
};
