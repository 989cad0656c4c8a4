import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { chmod, lstat, mkdir, rename, rmdir, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { FerryError } from '@ferry/core';

/**
 * The API's Unix socket, root's alone: created in a fresh directory only its owner may enter, made
 * 0600 there, then renamed into place, so no one else can connect to it at any moment (a socket
 * made where it stays would be open to others between its creation and its chmod). Its directory
 * is made (0700) when missing.
 */
export async function listenOnSocket(path: string, listen: (tmpPath: string) => Promise<void>): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await clearStale(path);
  const tmpDir = join(dirname(path), `.api-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(tmpDir, { mode: 0o700 });
  const tmp = join(tmpDir, 's');
  try {
    await listen(tmp);
    await chmod(tmp, 0o600);
    await rename(tmp, path);
  } finally {
    await rmdir(tmpDir).catch(() => undefined);
  }
}

/** A socket left by a server that is gone is removed; one that answers, or anything else there, is refused. */
async function clearStale(path: string): Promise<void> {
  const st = await lstat(path).catch(() => null);
  if (!st) return;
  if (!st.isSocket()) throw new FerryError('API_SOCKET_PATH_TAKEN', `${path} exists and is not a socket; remove it or give another --socket`);
  const answers = await new Promise<boolean>((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
  if (answers) throw new FerryError('API_SOCKET_IN_USE', `another ferry API already serves on ${path}`);
  await unlink(path);
}

/** Removes the socket when the server stops. */
export async function removeSocket(path: string): Promise<void> {
  await unlink(path).catch(() => undefined);
}
