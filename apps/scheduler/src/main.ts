#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { runScheduler } from './run.js';

// The control-plane key and the trusted host keys (else FERRY_CONTROL_KEY, FERRY_HOST_KEYS, else <state dir>/keys).
const { values } = parseArgs({ options: { 'control-key': { type: 'string' }, 'host-keys': { type: 'string' } } });
await runScheduler({ trust: { ...(values['control-key'] ? { controlKey: values['control-key'] } : {}), ...(values['host-keys'] ? { hostKeys: values['host-keys'] } : {}) } });
