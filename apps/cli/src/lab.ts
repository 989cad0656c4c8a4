import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { EXIT, ExitError } from './exit-error.js';

/**
 * `ferry lab ...`: runs the lab's own bin (package @ferry/lab, apps/lab in the ferry repository)
 * with the same arguments, in the foreground, and returns its exit code. The `ferry` CLI carries
 * none of the lab, demo, bench or chaos code: where @ferry/lab is not installed, `ferry lab` says so.
 */
export async function runLab(args: string[]): Promise<number> {
  let bin: string;
  try {
    bin = fileURLToPath(import.meta.resolve('@ferry/lab/bin'));
  } catch {
    throw new ExitError(EXIT.failed, 'the lab is not installed here: it is the @ferry/lab workspace of the ferry repository (apps/lab)');
  }
  if (!existsSync(bin)) throw new ExitError(EXIT.failed, `${bin} does not exist; run \`npm run build\``);
  const child = spawn(process.execPath, [bin, ...args], { stdio: 'inherit' });
  // Ctrl-C reaches the lab through the terminal's process group: ferry outlives it to report its
  // exit code, and passes a SIGTERM of its own on.
  const ignore = () => {};
  const forward = () => child.kill('SIGTERM');
  process.on('SIGINT', ignore);
  process.on('SIGTERM', forward);
  try {
    return await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code, signal) => resolve(code ?? (signal === 'SIGINT' ? 130 : EXIT.failed)));
    });
  } finally {
    process.off('SIGINT', ignore);
    process.off('SIGTERM', forward);
  }
}
