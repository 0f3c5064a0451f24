/**
 * @module shared/secrets
 * Bearer tokens and the files that hold them.
 *
 * A token is `dgt_<id>_<secret>`: the id (12 hex) names it in lists and revocations; the secret
 * is 256 random bits, base64url. Only the SHA-256 of the whole text is stored and sent to DPs:
 * with 256 bits of entropy a fast hash is enough (no password stretching needed), and it costs
 * about a microsecond per request. The cluster token (workers and DPs joining) has the same form.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

const tokenPattern = /^dgt_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;
const idBytes = 6;
const secretBytes = 32;
/** A bearer header longer than this is refused before hashing. */
export const bearerLengthMax = 256;

export function newToken(): { id: string; token: string } {
  const id = randomBytes(idBytes).toString('hex');
  return { id, token: `dgt_${id}_${randomBytes(secretBytes).toString('base64url')}` };
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** The id of a well-formed token, else null (never throws on any input). */
export function tokenId(token: string): string | null {
  const m = tokenPattern.exec(token);
  return m ? m[1]! : null;
}

/** The token in an `Authorization: Bearer <token>` header, or null when absent or malformed. */
export function bearerOf(header: string | string[] | undefined): string | null {
  if (typeof header !== 'string' || header.length > bearerLengthMax) return null;
  const m = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
  return m ? m[1]! : null;
}

/** Compares two hex digests in constant time. */
export function sameDigest(aHex: string, bHex: string): boolean {
  if (aHex.length !== bHex.length) return false;
  return timingSafeEqual(Buffer.from(aHex, 'hex'), Buffer.from(bHex, 'hex'));
}

/** Reads a token file (one token, surrounding whitespace ignored); throws naming the file. */
export function readTokenFile(path: string): string {
  const text = readFileSync(path, 'utf8').trim();
  if (tokenId(text) === null) throw new Error(`${path} does not hold a dirigent token (dgt_<id>_<secret>)`);
  return text;
}

/**
 * The token in `path`, created (mode 0600, directory made) when the file does not exist.
 * Used for the admin and cluster tokens `up` and a first control plane write.
 */
export function readOrCreateTokenFile(path: string): { token: string; created: boolean } {
  if (existsSync(path)) return { token: readTokenFile(path), created: false };
  mkdirSync(dirname(path), { recursive: true });
  const { token } = newToken();
  writeFileSync(path, `${token}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(path, 0o600);
  return { token, created: true };
}
