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

/** Tokens whose digests a `TokenDigests` remembers; past it, the oldest is forgotten. */
export const tokenDigestsEntriesMax = 1_024;

/**
 * The SHA-256 of the bearer tokens a server sees, remembered: a client sends the same token on
 * every request, and hashing it again was about half of authenticating one (5 us of 10 on a
 * registration). Only the digest is memoized, which depends on the token text alone: whether
 * the token is still valid is looked up on every request, so a revocation is never cached.
 * Bounded, oldest first out; a miss costs one hash as before. The tokens it keeps are ones this
 * process has just read off requests.
 */
export class TokenDigests {
  private readonly byToken = new Map<string, string>();

  constructor(private readonly entriesMax = tokenDigestsEntriesMax) {}

  of(token: string): string {
    const known = this.byToken.get(token);
    if (known !== undefined) return known;
    const digest = sha256Hex(token);
    if (this.byToken.size >= this.entriesMax) this.byToken.delete(this.byToken.keys().next().value!);
    this.byToken.set(token, digest);
    return digest;
  }

  get size(): number {
    return this.byToken.size;
  }
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
