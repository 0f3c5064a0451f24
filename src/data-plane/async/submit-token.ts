/**
 * @module data-plane/async/submit-token
 * What an async invocation of an auth: token function keeps of its submitter's bearer token:
 * the token's id and digest, never the secret.
 */
import { bearerOf, sha256Hex, tokenId } from '../../shared/secrets.js';

/**
 * Kept with an auth: token function's request instead of its Authorization: the submitter's
 * token id and digest (`<id>:<sha256 hex>`), enough for each attempt to check the token again
 * (revoked since?) while the store never holds a bearer secret. Never taken from a client.
 */
export const submitTokenHeader = 'x-dirigent-submit-token';
/** The stored form of a bearer token (see submitTokenHeader), or undefined if there is none. */
export function submitTokenOf(authorization: string | string[] | undefined): string | undefined {
  const bearer = bearerOf(authorization);
  const id = bearer === null ? null : tokenId(bearer);
  return id === null ? undefined : `${id}:${sha256Hex(bearer!)}`;
}

/** The token id and digest of a stored submit token, or null if absent or malformed. */
export function storedSubmitToken(headers: Readonly<Record<string, string>>): { id: string; sha256Hex: string } | null {
  const v = headers[submitTokenHeader];
  const colon = v === undefined ? -1 : v.indexOf(':');
  return colon <= 0 ? null : { id: v!.slice(0, colon), sha256Hex: v!.slice(colon + 1) };
}
