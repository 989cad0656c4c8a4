import { ValidationError } from '../errors/index.js';
import { parseCheckpointRequest } from '../checkpoint-request.js';
import { layout, step, type Wiring, type Workflow } from './workflow.js';

/**
 * Checkpoint to disk (the seed's OpenVZ CPT, `vzctl chkpnt`): one step on the container's host
 * dumps it with CRIU into its checkpoint dir (written aside, then renamed, with a manifest) and
 * leaves it stopped: `checkpointed`, as the host's worker reads it from disk. Nothing to
 * compensate: a dump that fails lets the container run again within the step itself (thawed, or
 * started again if it had stopped), and a step re-run after a crash finds what the last one did.
 */
const dump = step('checkpoint-dump', 'host', (w: Wiring<'checkpoint'>) => w.on(w.request.container), { attempts: 3 });

export const checkpoint: Workflow<'checkpoint'> = {
  kind: 'checkpoint',
  parse: parseCheckpointRequest,
  hostNames: (req) => [req.host],
  hosts: (req, peer) => ({ host: peer(req.host) }),
  holds: (req) => [req.container],
  steps: [dump],
  plan(req, caps) {
    const c = caps(req.host);
    if (!c.checkpoint) {
      throw new ValidationError([{ path: 'host', message: `${req.host} cannot checkpoint (${c.checkpointReason ?? 'no checkpoint support'})` }]);
    }
    return layout<'checkpoint'>(() => req.host, { forward: [dump], pointOfNoReturn: dump, owner: 'host' });
  },
};
