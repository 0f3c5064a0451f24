/**
 * @module shared/loopback
 * Whether a listen address is loopback-only: 127.0.0.0/8, ::1 or localhost. Auth may be
 * switched off only there. Pure (no name resolution): any other name counts as not loopback.
 */

export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  const v4 = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(h.startsWith('::ffff:') ? h.slice(7) : h);
  return v4 !== null && v4.slice(1).every((o) => Number(o) <= 255);
}
