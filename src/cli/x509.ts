/**
 * @module cli/x509
 * A minimal X.509 v3 certificate builder for `dirigent certs create`: DER encoding of exactly the
 * fields a private test CA and its server certificates need (ECDSA P-256 with SHA-256, a CN,
 * basic constraints, key usage, extended key usage, subject alternative names, key identifiers).
 *
 * Written here rather than taken from a library: the subset is ~150 lines, node:crypto does the
 * keys and the signature, and the CLI gains no dependency (nor its transitive tree) for a
 * command run once per test cluster. Tests check the result with node's own X509Certificate.
 */
import { createHash, sign, type KeyObject } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';

const tag = { boolean: 0x01, integer: 0x02, bitString: 0x03, octetString: 0x04, oid: 0x06, utf8: 0x0c, sequence: 0x30, set: 0x31, utcTime: 0x17, generalizedTime: 0x18 } as const;
const oid = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  subjectKeyId: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyId: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const;
/** RFC 5280 §4.1.2.5: UTCTime up to 2049, GeneralizedTime from 2050. */
const utcTimeYearEnd = 2050;
const serialBytes = 16;

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v % 256);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(t: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([t]), length(body.length), body]);
}

const seq = (...items: Buffer[]): Buffer => tlv(tag.sequence, Buffer.concat(items));
const explicit = (n: number, body: Buffer): Buffer => tlv(0xa0 | n, body);

function objectId(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  const out: number[] = [40 * arcs[0]! + arcs[1]!];
  for (const arc of arcs.slice(2)) {
    const chunk: number[] = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f));
    out.push(...chunk);
  }
  return tlv(tag.oid, Buffer.from(out));
}

/** A non-negative INTEGER from big-endian bytes (a leading 0 keeps the sign bit clear). */
function unsignedInteger(bytes: Buffer): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i += 1;
  const trimmed = bytes.subarray(i);
  return tlv(tag.integer, trimmed[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

function bitString(bytes: Buffer, unusedBits = 0): Buffer {
  return tlv(tag.bitString, Buffer.concat([Buffer.from([unusedBits]), bytes]));
}

function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z';
  return d.getUTCFullYear() < utcTimeYearEnd ? tlv(tag.utcTime, Buffer.from(iso.slice(2))) : tlv(tag.generalizedTime, Buffer.from(iso));
}

function name(commonName: string): Buffer {
  const rdn = (type: string, value: string): Buffer => tlv(tag.set, seq(objectId(type), tlv(tag.utf8, Buffer.from(value))));
  return seq(rdn(oid.organization, 'dirigent'), rdn(oid.commonName, commonName));
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return seq(objectId(id), ...(critical ? [tlv(tag.boolean, Buffer.from([0xff]))] : []), tlv(tag.octetString, value));
}

/** 16 bytes of an IPv6 address (with `::` and an embedded IPv4 tail). */
function ipv6Bytes(ip: string): Buffer {
  const [head, tail] = ip.includes('::') ? ip.split('::') as [string, string] : [ip, null];
  const groups = (part: string): number[] => part === '' ? [] : part.split(':').flatMap((g) =>
    isIPv4(g) ? [(Number(g.split('.')[0]) << 8) | Number(g.split('.')[1]), (Number(g.split('.')[2]) << 8) | Number(g.split('.')[3])] : [parseInt(g, 16)]);
  const left = groups(head);
  const right = tail === null ? [] : groups(tail);
  const all = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  const out = Buffer.alloc(16);
  all.forEach((g, k) => out.writeUInt16BE(g, 2 * k));
  return out;
}

/** subjectAltName: IP addresses as iPAddress [7], everything else as dNSName [2]. */
function altNames(hosts: readonly string[]): Buffer {
  return seq(...hosts.map((h) => {
    if (isIPv4(h)) return tlv(0x87, Buffer.from(h.split('.').map(Number)));
    if (isIPv6(h)) return tlv(0x87, ipv6Bytes(h));
    return tlv(0x82, Buffer.from(h, 'ascii'));
  }));
}

/** The SHA-1 of the subjectPublicKey bits (RFC 5280 §4.2.1.2 method 1). */
export function keyIdOf(spkiDer: Buffer): Buffer {
  // SPKI = SEQUENCE { AlgorithmIdentifier, BIT STRING }: an uncompressed P-256 point is the last 65 bytes.
  return createHash('sha1').update(spkiDer.subarray(spkiDer.length - 65)).digest();
}

export interface CertificateRequest {
  commonName: string;
  publicKey: KeyObject;
  /** Signs the certificate; its own key for a self-signed CA. */
  issuer: { commonName: string; privateKey: KeyObject; publicKey: KeyObject };
  notBefore: Date;
  notAfter: Date;
  serial: Buffer;
  /** A CA certificate (may sign certificates) or a server one with these SANs. */
  kind: { ca: true } | { ca: false; hosts: readonly string[] };
}

/** A random positive serial number of `serialBytes` bytes from the given random bytes. */
export function serialFrom(random: Buffer): Buffer {
  const s = Buffer.from(random.subarray(0, serialBytes));
  s[0] = (s[0]! & 0x7f) | 0x01;
  return s;
}

function extensionsOf(r: CertificateRequest, spki: Buffer): Buffer {
  const issuerSpki = r.issuer.publicKey.export({ type: 'spki', format: 'der' });
  const ids = [
    extension(oid.subjectKeyId, false, tlv(tag.octetString, keyIdOf(spki))),
    extension(oid.authorityKeyId, false, seq(tlv(0x80, keyIdOf(issuerSpki)))),
  ];
  if (r.kind.ca) {
    return seq(
      extension(oid.basicConstraints, true, seq(tlv(tag.boolean, Buffer.from([0xff])))),
      // keyCertSign (bit 5) and cRLSign (bit 6).
      extension(oid.keyUsage, true, bitString(Buffer.from([0x06]), 1)),
      ...ids,
    );
  }
  return seq(
    extension(oid.basicConstraints, true, seq()),
    // digitalSignature (bit 0): ECDHE key exchange signs with it.
    extension(oid.keyUsage, true, bitString(Buffer.from([0x80]), 7)),
    extension(oid.extKeyUsage, false, seq(objectId(oid.serverAuth), objectId(oid.clientAuth))),
    extension(oid.subjectAltName, false, altNames(r.kind.hosts)),
    ...ids,
  );
}

/** The certificate, DER, signed by the issuer's key. */
export function buildCertificate(r: CertificateRequest): Buffer {
  const spki = r.publicKey.export({ type: 'spki', format: 'der' });
  const algorithm = seq(objectId(oid.ecdsaWithSha256));
  const tbs = seq(
    explicit(0, tlv(tag.integer, Buffer.from([2]))),
    unsignedInteger(r.serial),
    algorithm,
    name(r.issuer.commonName),
    seq(time(r.notBefore), time(r.notAfter)),
    name(r.commonName),
    spki,
    explicit(3, extensionsOf(r, spki)),
  );
  const signature = sign('sha256', tbs, { key: r.issuer.privateKey, dsaEncoding: 'der' });
  return seq(tbs, algorithm, bitString(signature));
}

export function pemOf(der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`;
}
