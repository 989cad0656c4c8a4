import type { Peer } from '@ferry/core';
import { MARKER } from '../ownership/target-ownership.js';

/** Directory in the target's container dir receiving a CRIU dump. */
export const DUMP_DIR = '.ferry-dump';
/** File in the target's container dir listing what the final pass sent (for `verify: changed`). */
export const VERIFY_LIST = '.ferry-verify';
/** Paths in the container dir that belong to ferry, not to the container (anchored rsync excludes). */
export const FERRY_EXCLUDES = [`/${MARKER}`, `/${DUMP_DIR}`, `/${VERIFY_LIST}`] as const;

/** The container's directory on a peer. */
export function peerContainerDir(peer: Peer, container: string): string {
  return `${peer.lxcPath.replace(/\/+$/, '')}/${container}`;
}
