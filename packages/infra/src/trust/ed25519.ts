import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';

/**
 * Ed25519 through node:crypto: the one place ferry signs and verifies. Messages are text (the
 * canonical JSON of packages/core/src/trust), signatures base64.
 */
export function newSigningKey(): KeyObject {
  return generateKeyPairSync('ed25519').privateKey;
}

export function signText(privateKey: KeyObject, text: string): string {
  return sign(null, Buffer.from(text, 'utf8'), privateKey).toString('base64');
}

/** False for any signature that does not verify, including malformed ones (never throws on input). */
export function verifyText(publicKey: KeyObject, text: string, sig: string): boolean {
  try {
    return verify(null, Buffer.from(text, 'utf8'), publicKey, Buffer.from(sig, 'base64'));
  } catch {
    return false;
  }
}

export function publicKeyOf(privateKey: KeyObject): KeyObject {
  return createPublicKey(privateKey);
}

export function privateKeyPem(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

export function publicKeyPem(key: KeyObject): string {
  return key.export({ type: 'spki', format: 'pem' }).toString();
}

/** Parses a PEM private key; an Ed25519 one only. */
export function parsePrivateKey(pem: string): KeyObject {
  const k = createPrivateKey(pem);
  if (k.asymmetricKeyType !== 'ed25519') throw new Error(`not an Ed25519 key (${k.asymmetricKeyType})`);
  return k;
}

/** Parses a PEM public key (a private one gives its public half); an Ed25519 one only. */
export function parsePublicKey(pem: string): KeyObject {
  const k = createPublicKey(pem);
  if (k.asymmetricKeyType !== 'ed25519') throw new Error(`not an Ed25519 key (${k.asymmetricKeyType})`);
  return k;
}

/** A short name for a public key in logs: `ed25519:` and the first 16 hex digits of the SHA-256 of its DER. */
export function fingerprint(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return `ed25519:${createHash('sha256').update(pub.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 16)}`;
}
