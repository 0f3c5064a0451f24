/**
 * @module shared/loopback
 * Whether a listen address is reachable only from this machine. Auth may be switched off
 * (`--auth none`) only then: a CP or DP listening beyond loopback without auth would let anyone
 * on the network deploy code or invoke functions. Pure.
 */

/** 127.0.0.0/8, ::1 (also bracketed or as ::ffff:127.x.y.z) and `localhost`. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice('::ffff:'.length) : h;
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(v4);
  return m !== null && m[1] === '127' && m.slice(2).every((o) => Number(o) <= 255);
}
