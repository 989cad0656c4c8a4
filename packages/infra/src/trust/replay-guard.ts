import { createHash } from 'node:crypto';
import { appendFile, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * A process's own record of the signed jobs it has finished (or, for at-most-once jobs, begun),
 * kept on local disk, never in Redis (which anyone who can write to it could clear). A job whose
 * signature is recorded is a replay: the same signed job re-added, whatever its id now says, after
 * it was done. Entries live until their job's expiry (after it the signature is refused anyway),
 * so the record stays small. One line per job, `<expiry ms> <digest of the signature>`, appended
 * (a crash of the process loses nothing written; a crash of the machine may lose the last lines),
 * and, where the job's outcome was recorded with it (a worker's signed step result), a third field:
 * that outcome (base64url of its JSON). A Redis failover can lose the writes that followed a job's
 * end (its completion, its reported result): the job then comes back, and its recorded outcome is
 * what this process reports again, running nothing (see the worker's JobGate).
 */
export class ReplayGuard {
  private readonly seen = new Map<string, number>();
  /** Recorded outcomes, by the digest of the job's signature (kept as long as its entry). */
  private readonly outcomes = new Map<string, string>();
  private appended = 0;
  private writes: Promise<void>;
  /** The file read (read only: a second process refused the same state dir must not rewrite it). */
  private readonly loaded: Promise<void>;

  constructor(
    readonly file: string,
    private readonly now: () => number = Date.now,
  ) {
    this.loaded = mkdir(dirname(file), { recursive: true, mode: 0o700 }).then(() => this.load());
    this.writes = this.loaded.catch(() => undefined);
  }

  /** A guard whose file has been read (a file that cannot be read fails here, not at the first job). */
  static async open(file: string, now: () => number = Date.now): Promise<ReplayGuard> {
    const g = new ReplayGuard(file, now);
    await g.loaded;
    return g;
  }

  /** Whether this signed job was recorded (and has not expired). */
  async has(sig: string): Promise<boolean> {
    await this.loaded;
    const exp = this.seen.get(digest(sig));
    return exp !== undefined && exp > this.now();
  }

  /** Records a signed job as done (with its outcome, JSON, when given); resolves once it is written. */
  async record(sig: string, exp: number, outcome?: unknown): Promise<void> {
    await this.loaded;
    const id = digest(sig);
    this.seen.set(id, exp);
    const encoded = outcome === undefined ? undefined : Buffer.from(JSON.stringify(outcome)).toString('base64url');
    if (encoded !== undefined) this.outcomes.set(id, encoded);
    await this.write(`${exp} ${id}${encoded !== undefined ? ` ${encoded}` : ''}\n`);
  }

  /** The outcome recorded with a done job (and not expired), or undefined. */
  async outcome(sig: string): Promise<unknown> {
    if (!(await this.has(sig))) return undefined;
    const encoded = this.outcomes.get(digest(sig));
    return encoded === undefined ? undefined : (JSON.parse(Buffer.from(encoded, 'base64url').toString()) as unknown);
  }

  /** For at-most-once jobs: records it and returns true, or false when it was recorded already. */
  async claim(sig: string, exp: number): Promise<boolean> {
    await this.loaded;
    const id = digest(sig);
    const known = this.seen.get(id);
    if (known !== undefined && known > this.now()) return false;
    this.seen.set(id, exp); // before the write: a second claim meanwhile sees it
    await this.write(`${exp} ${id}\n`);
    return true;
  }

  get size(): number {
    return this.seen.size;
  }

  private write(line: string): Promise<void> {
    const next = this.writes.then(async () => {
      await appendFile(this.file, line, { mode: 0o600 });
      // Rewritten without expired entries once it holds many more lines than live ones.
      if (++this.appended > 1000 + 2 * this.seen.size) await this.compact();
    });
    this.writes = next.catch(() => undefined);
    return next;
  }

  private async load(): Promise<void> {
    const text = await readFile(this.file, 'utf8').catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return '';
      throw e;
    });
    const now = this.now();
    const lines = text.split('\n');
    this.appended = lines.length; // a file bloated by earlier runs is compacted at the next write
    for (const line of lines) {
      const [exp, id, outcome] = line.split(' ');
      const n = Number(exp);
      if (!id || !Number.isFinite(n) || n <= now) continue;
      this.seen.set(id, Math.max(n, this.seen.get(id) ?? 0));
      if (outcome) this.outcomes.set(id, outcome);
    }
  }

  private async compact(): Promise<void> {
    await this.load(); // lines another process of the same state dir appended meanwhile
    const now = this.now();
    for (const [id, exp] of this.seen) {
      if (exp > now) continue;
      this.seen.delete(id);
      this.outcomes.delete(id);
    }
    const tmp = `${this.file}.tmp`;
    const line = (id: string, exp: number) => `${exp} ${id}${this.outcomes.has(id) ? ` ${this.outcomes.get(id)}` : ''}\n`;
    await writeFile(tmp, [...this.seen].map(([id, exp]) => line(id, exp)).join(''), { mode: 0o600 });
    await rename(tmp, this.file);
    this.appended = 0;
  }
}

function digest(sig: string): string {
  return createHash('sha256').update(sig).digest('hex').slice(0, 32);
}
