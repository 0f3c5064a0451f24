/**
 * @module shared/http1/header-name
 * A header line's name, checked and lower-cased, for both lean readers (request heads in
 * `h1-head`, sandbox response heads in `data-plane/shell/h1-response`). A lower-case name that is
 * one of the common ones comes back as its literal, not as a new string: V8 then need not look it
 * up in its string table when it becomes a property key, and comparisons with it are a pointer's.
 */

/** 1 for the token characters of RFC 9110 §5.6.2, by ASCII code. */
const tcharCodes = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") tcharCodes[c.charCodeAt(0)] = 1;

const commonNames = [
  'host', 'accept', 'connection', 'user-agent', 'content-type', 'authorization', 'content-length',
  'accept-encoding', 'x-forwarded-host', 'date', 'keep-alive', 'transfer-encoding', 'server',
  'cache-control', 'etag', 'last-modified', 'set-cookie', 'vary',
];
/** Index: a name's length; no holes, so that a lookup stays on V8's fast path. */
const commonNamesByLength: string[][] = Array.from({ length: 1 + Math.max(...commonNames.map((n) => n.length)) }, () => []);
for (const name of commonNames) commonNamesByLength[name.length]!.push(name);

/** The lower-case name of `s` from `from` to `to` (before its colon), or null if that is not a token. */
export function lowerHeaderName(s: string, from: number, to: number): string | null {
  if (to <= from) return null;
  let upper = false;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || tcharCodes[c] === 0) return null;
    if (c <= 0x5a && c >= 0x41) upper = true;
  }
  if (upper) return s.slice(from, to).toLowerCase();
  const length = to - from;
  if (length < commonNamesByLength.length) {
    const common = commonNamesByLength[length]!;
    for (let i = 0; i < common.length; i++) if (s.startsWith(common[i]!, from)) return common[i]!;
  }
  return s.slice(from, to);
}
