import { parseUnifyRequest } from '../unify-request.js';
import { layout, step, type Wiring, type Workflow } from './workflow.js';

/**
 * Unify (`vunify`/`hashify`): share identical files among containers of one host, in one step on
 * that host. Nothing to compensate: dedupe changes no file, and hardlink mode is undone by
 * `--revert`.
 */
const share = step('unify', 'host', (w: Wiring<'unify'>) => {
  const { containers, mode, dryRun, revert, excludes } = w.request;
  return { ...w.on(w.request.container), containers, mode, dryRun, revert, excludes };
});

export const unify: Workflow<'unify'> = {
  kind: 'unify',
  parse: parseUnifyRequest,
  hostNames: (req) => [req.host],
  hosts: (req, peer) => ({ host: peer(req.host) }),
  holds: (req) => req.containers,
  steps: [share],
  plan: (req) => layout<'unify'>(() => req.host, { forward: [share], pointOfNoReturn: share, owner: 'host' }),
};
