/** What a unify run answers: plain JSON-able data, and a short human rendering of it. */

export type UnifyMode = 'dedupe' | 'hardlink';

export interface FileProblem {
  /** `/`-rooted path inside its rootfs. */
  path: string;
  rootfs: string;
  /** Errno name or a ferry reason (`CHANGED`, `DIFFERS`). */
  code: string;
  message: string;
}

export interface UnifyReport {
  action: 'unify' | 'revert';
  mode: UnifyMode;
  dryRun: boolean;
  rootfs: string[];
  store: string;
  filesystem: { type: string; device: string };
  /** Regular files looked at (skipped paths are not); includes excluded ones. */
  filesExamined: number;
  filesExcluded: number;
  /** Distinct contents found more than once (or in the store). */
  duplicateGroups: number;
  /** Files that now share (dry run: would share) another copy's data, and their size. */
  filesShared: number;
  bytesShared: number;
  /** Files that already shared the kept copy's blocks or inode (earlier runs). */
  filesAlreadyShared: number;
  bytesAlreadyShared: number;
  /** Candidates left alone because they changed, differ in metadata, or have links elsewhere. */
  filesSkipped: number;
  /** Revert only: files rebuilt as their own inode. */
  filesRestored: number;
  /** Store objects created / removed. */
  objectsCreated: number;
  objectsRemoved: number;
  /** statfs of the file system before and after (bytes in use) and the difference. */
  usedBefore: number;
  usedAfter: number;
  /** usedBefore - usedAfter: what the file system really gained (negative: it lost). */
  bytesFreed: number;
  /**
   * Which mode can share files on this file system (unify only, not revert), as probed: dedupe
   * needs FIDEDUPERANGE and FICLONE, hardlink the immutable flag; `notes` say why one cannot.
   */
  modes?: { dedupe: boolean; hardlink: boolean; notes: string[] };
  /** Directories not entered because another file system is mounted there. */
  otherFilesystems: string[];
  problems: FileProblem[];
  durationMs: number;
  /** Where the time went: walking the trees, hashing, sharing (or restoring), statfs. */
  phaseMs: { scan: number; hash: number; share: number; measure: number };
}

export function emptyReport(base: Pick<UnifyReport, 'action' | 'mode' | 'dryRun' | 'rootfs' | 'store' | 'filesystem'>): UnifyReport {
  return {
    ...base,
    filesExamined: 0,
    filesExcluded: 0,
    duplicateGroups: 0,
    filesShared: 0,
    bytesShared: 0,
    filesAlreadyShared: 0,
    bytesAlreadyShared: 0,
    filesSkipped: 0,
    filesRestored: 0,
    objectsCreated: 0,
    objectsRemoved: 0,
    usedBefore: 0,
    usedAfter: 0,
    bytesFreed: 0,
    otherFilesystems: [],
    problems: [],
    durationMs: 0,
    phaseMs: { scan: 0, hash: 0, share: 0, measure: 0 },
  };
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = Math.abs(n);
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${n < 0 ? '-' : ''}${u ? v.toFixed(1) : v} ${units[u]}`;
}

/** A few lines for a terminal. */
export function formatReport(r: UnifyReport): string {
  const what = r.action === 'revert' ? 'revert' : `unify (${r.mode})`;
  const lines = [
    `${what}${r.dryRun ? ' [dry run]' : ''} of ${r.rootfs.length} rootfs on ${r.filesystem.type} ${r.filesystem.device}, store ${r.store}`,
    `  examined ${r.filesExamined} files (${r.filesExcluded} excluded), ${r.duplicateGroups} duplicate groups`,
  ];
  if (r.action === 'revert') lines.push(`  restored ${r.filesRestored} files as their own inodes`);
  else {
    lines.push(
      `  ${r.dryRun ? 'would share' : 'shared'} ${r.filesShared} files (${formatBytes(r.bytesShared)}); already shared ${r.filesAlreadyShared} (${formatBytes(r.bytesAlreadyShared)}); skipped ${r.filesSkipped}`,
    );
  }
  if (r.dryRun && r.modes) lines.push(modesLine(r.filesystem.type, r.modes));
  if (!r.dryRun) lines.push(`  space freed (statfs): ${formatBytes(r.bytesFreed)}`);
  for (const p of r.problems.slice(0, 10)) lines.push(`  ! ${p.rootfs}${p.path}: ${p.code} ${p.message}`);
  if (r.problems.length > 10) lines.push(`  ! ... and ${r.problems.length - 10} more`);
  return lines.join('\n');
}

/** A dry run's answer to "and could they be shared here?": the modes this file system allows, and why not the others. */
function modesLine(fs: string, m: NonNullable<UnifyReport['modes']>): string {
  const immutable = (n: string) => n.includes('immutable');
  const why = (notes: string[]) => notes.join('; ') || 'the probe failed';
  const can = [...(m.dedupe ? ['dedupe'] : []), ...(m.hardlink ? ['hardlink (stopped containers only)'] : [])];
  const cannot = [
    ...(m.dedupe ? [] : [`dedupe cannot (${why(m.notes.filter((n) => !immutable(n)))})`]),
    ...(m.hardlink ? [] : [`hardlink cannot (${why(m.notes.filter(immutable))})`]),
  ];
  return `  on ${fs}: ${can.length ? `${can.join(' or ')} could share them` : 'no mode could share them'}${cannot.length ? `; ${cannot.join('; ')}` : ''}`;
}
