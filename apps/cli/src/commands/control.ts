import { FerryError, transition } from '@ferry/core';
import type { Client } from '../client.js';
import { EXIT, ExitError } from '../exit-error.js';
import { enqueueRequest } from '../client.js';

/**
 * retry / cancel: checked here against the state machine (a refused event is bad input, exit 2),
 * then handed to the scheduler, which applies it again atomically.
 */
export async function control(c: Client, id: string, kind: 'retry' | 'cancel'): Promise<number> {
  const r = await c.store.get(id);
  if (!r) throw new ExitError(EXIT.badInput, `no operation with id ${id}`);
  if (r.state === 'rejected') throw new ExitError(EXIT.badInput, `${r.kind} ${id} was rejected; nothing to ${kind}`);
  try {
    transition(r, { type: kind }, Date.now());
  } catch (e) {
    if (e instanceof FerryError) throw new ExitError(EXIT.badInput, e.message);
    throw e;
  }
  await enqueueRequest(c, kind, { kind, migrationId: id }, `${kind}.${id}.${r.version}`);
  return r.version;
}
