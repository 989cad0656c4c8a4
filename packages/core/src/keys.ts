/**
 * Redis key and BullMQ queue names. Everything lives under one prefix, so a test (or a second
 * ferry installation) can use a fresh one. BullMQ forbids ':' in queue names and custom job ids.
 */
export const DEFAULT_PREFIX = 'ferry';

export const queueNames = {
  scheduler: 'scheduler',
  host: (host: string) => `host-${host}`,
};

export function keys(prefix: string) {
  return {
    migration: (id: string) => `${prefix}:mig:${id}`,
    /** Field `<phase>.<index>` → the step's latest progress entry (JSON); advisory, shown by status. */
    progress: (id: string) => `${prefix}:mig:${id}:progress`,
    /** Field `<phase>.<index>.<run>` → when a worker first began that step run (ms): it may have acted. */
    starts: (id: string) => `${prefix}:mig:${id}:starts`,
    /** Field `<phase>.<index>.<run>` → how often the reconciler re-enqueued a lost step job. */
    replays: (id: string) => `${prefix}:mig:${id}:replays`,
    migrations: `${prefix}:migs`,
    /** Which migration holds a container: one migration per container at a time. */
    lock: (container: string) => `${prefix}:lock:${container}`,
    /** Ownership epoch of a container, raised at each handover (fencing). */
    owner: (container: string) => `${prefix}:owner:${container}`,
    host: (host: string) => `${prefix}:host:${host}`,
    hosts: `${prefix}:hosts`,
    /** Host name → when its worker last said it is alive (ms); cheap, apart from the description. */
    hostsAlive: `${prefix}:hosts-alive`,
  };
}
export type Keys = ReturnType<typeof keys>;

export type Phase = 'forward' | 'rollback';

export function stepJobId(migrationId: string, phase: Phase, index: number, run: number): string {
  return `${migrationId}.${phase}.${index}.r${run}`;
}

export function advanceJobId(migrationId: string, phase: Phase, index: number, run: number): string {
  return `adv.${stepJobId(migrationId, phase, index, run)}`;
}

export function newMigrationId(now: number, random: () => number = Math.random): string {
  const rand = Math.floor(random() * 36 ** 6)
    .toString(36)
    .padStart(6, '0');
  return `m-${now.toString(36)}${rand}`;
}
