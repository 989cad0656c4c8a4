/**
 * Canonical JSON: the one byte string a signer and a verifier both derive from a value, whatever
 * order its keys were written in and whether it crossed Redis (JSON) in between. Object keys are
 * sorted (by UTF-16 code units, as Array.prototype.sort does), no whitespace; everything else is
 * what JSON.stringify makes of it, so a value and its JSON round trip encode alike: `undefined`
 * members are left out, `undefined` in arrays becomes null, toJSON is honoured, non-finite numbers
 * are null. Built as a string, never as an object, so a key such as `__proto__` stays a key.
 */
export function canonicalJson(value: unknown): string {
  const plain: unknown = value === undefined ? null : JSON.parse(JSON.stringify(value));
  return encode(plain);
}

function encode(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(encode).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${encode(o[k])}`)
    .join(',')}}`;
}
