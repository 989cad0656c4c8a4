#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { parseHostConfig } from './config-parse.js';
import { runWorker } from './run.js';

const { values } = parseArgs({
  options: {
    host: { type: 'string' },
    address: { type: 'string' },
    'ssh-port': { type: 'string' },
    'ssh-user': { type: 'string' },
    'lxc-path': { type: 'string' },
    'ssh-key': { type: 'string' },
    'known-hosts': { type: 'string' },
    'state-dir': { type: 'string' },
    'mount-root': { type: 'string', multiple: true },
    'control-key': { type: 'string' },
    'host-keys': { type: 'string' },
  },
});
try {
  await runWorker(
    parseHostConfig({
      host: values.host,
      address: values.address,
      sshPort: values['ssh-port'],
      sshUser: values['ssh-user'],
      lxcPath: values['lxc-path'],
      sshKey: values['ssh-key'],
      knownHosts: values['known-hosts'],
      stateDir: values['state-dir'],
      mountRoot: values['mount-root'],
      controlKey: values['control-key'],
      hostKeys: values['host-keys'],
    }),
  );
} catch (e) {
  console.error(`ferry-worker: ${(e as Error).message}`);
  process.exitCode = 2;
}
