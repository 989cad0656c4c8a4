import { z } from 'zod';
import { ContainerName, HostName, Ipv4, Mac } from './names.js';
import { parseOrThrow } from './request.js';

/** A DNS label: what /etc/hostname may hold. */
export const Hostname = z
  .string()
  .regex(/^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/, 'not a valid host name (letters, digits, inner hyphens, at most 63)');

/**
 * `vserver-copy` done right: copy a container (locally or to another host) and give the copy an
 * identity of its own. Field names match a migration's (`container`, `from`, `to`) so the
 * scheduler locks and routes both alike.
 */
export const CloneRequest = z
  .object({
    /** The source container. */
    container: ContainerName,
    /** The clone's name. */
    name: ContainerName,
    from: HostName,
    to: HostName,
    ip: Ipv4.optional(),
    hostname: Hostname.optional(),
    /** Filled by ferry at submission: the clone's own MAC. */
    mac: Mac.optional(),
    /** Take the copy of a running source while it is frozen, then thaw it. */
    freeze: z.boolean().default(false),
    bwlimitKBps: z.int().min(1).optional(),
  })
  .refine((r) => r.name !== r.container, { path: ['name'], message: 'the clone needs a name of its own' });
export type CloneRequest = z.infer<typeof CloneRequest>;
export type CloneRequestInput = z.input<typeof CloneRequest>;

export function parseCloneRequest(input: unknown): CloneRequest {
  return parseOrThrow(CloneRequest, input);
}

/**
 * A locally administered unicast MAC (02:xx:…) derived from an operation id: the same every time
 * the clone's steps are issued, for a request that came without one.
 */
export function macFromId(id: string): string {
  // FNV-1a, 32 bits, twice with different seeds: 5 bytes that spread well enough for a lab of MACs.
  const fnv = (seed: number) => {
    let h = seed >>> 0;
    for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193) >>> 0;
    return h;
  };
  const a = fnv(0x811c9dc5);
  const b = fnv(0x050c5d1f);
  const bytes = [a >>> 24, (a >>> 16) & 255, (a >>> 8) & 255, a & 255, b & 255];
  return ['02', ...bytes.map((x) => x.toString(16).padStart(2, '0'))].join(':');
}

/** A random locally administered unicast MAC (02:xx:…), for a clone. */
export function randomMac(random: () => number = Math.random): string {
  const b = Array.from({ length: 5 }, () => Math.floor(random() * 256));
  return ['02', ...b.map((x) => x.toString(16).padStart(2, '0'))].join(':');
}
