import { randomBytes, type KeyObject } from 'node:crypto';
import { link, mkdir, open, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { FerryError } from '@ferry/core';
import { newSigningKey, parsePrivateKey, parsePublicKey, privateKeyPem, publicKeyOf, publicKeyPem } from './ed25519.js';

/**
 * Key files: a private key is a PEM (PKCS#8) readable by its owner only (0600), made on first
 * use; a public key is a PEM (SPKI), 0644. Errors carry stable codes: KEY_FILE_INSECURE,
 * KEY_FILE_INVALID, KEY_FILE_MISSING.
 */

/** The private key at `path`, made (with its directory, 0700) when there is none. */
export async function loadOrCreatePrivateKey(path: string, opts: { publicPath?: string } = {}): Promise<{ key: KeyObject; created: boolean }> {
  let key = await readPrivateKey(path);
  let created = false;
  if (!key) {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const fresh = newSigningKey();
    // Written whole under a temporary name, then linked into place: two processes making the key at
    // once (a scheduler and a CLI) end with one key, the other's attempt discarded.
    const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(privateKeyPem(fresh));
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await link(tmp, path);
      created = true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
    key = await readPrivateKey(path);
    if (!key) throw new FerryError('KEY_FILE_MISSING', `${path} vanished while it was made`);
  }
  if (opts.publicPath) await writePublicKeyFile(opts.publicPath, publicKeyOf(key));
  return { key, created };
}

/** The private key at `path`, or null when there is no file; refused when others may read it. */
export async function readPrivateKey(path: string): Promise<KeyObject | null> {
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  if ((st.mode & 0o077) !== 0) {
    throw new FerryError('KEY_FILE_INSECURE', `${path} may be read or written by others (mode ${(st.mode & 0o777).toString(8)}); it must be 0600: chmod 600 ${path}`);
  }
  try {
    return parsePrivateKey(await readFile(path, 'utf8'));
  } catch (e) {
    throw new FerryError('KEY_FILE_INVALID', `${path} is not an Ed25519 private key (PEM): ${(e as Error).message}`);
  }
}

/** The public key at `path` (a private key's file gives its public half); null when there is no file. */
export async function readPublicKeyFile(path: string): Promise<KeyObject | null> {
  let pem: string;
  try {
    pem = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  try {
    return parsePublicKey(pem);
  } catch (e) {
    throw new FerryError('KEY_FILE_INVALID', `${path} is not an Ed25519 public key (PEM): ${(e as Error).message}`);
  }
}

/** Writes a public key file (atomically, 0644) unless it already holds that key; says what it did. */
export async function writePublicKeyFile(path: string, key: KeyObject): Promise<'written' | 'unchanged' | 'replaced'> {
  const pem = publicKeyPem(key);
  const old = await readFile(path, 'utf8').catch(() => null);
  if (old === pem) return 'unchanged';
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, pem, { mode: 0o644, flag: 'wx' });
  await rename(tmp, path);
  return old === null ? 'written' : 'replaced';
}
