/**
 * @module cli/certs
 * `dirigent certs create`: a private CA and one server certificate signed by it, for a test
 * cluster's TLS (API, invocation port, gRPC links). ECDSA P-256 keys from node:crypto, written
 * 0600; the certificate is valid for localhost, 127.0.0.1, ::1 and the given hosts. Existing
 * files are never overwritten without --force (a CA replaced under a running cluster would
 * lock every worker out).
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import type { Command } from 'commander';
import { cliContext, CliError, usageError } from './context.js';
import { buildCertificate, pemOf, serialFrom } from './x509.js';

export const certsDirDefault = join('.dirigent', 'tls');
const daysDefault = 365;
/** Ten years: longer is no test certificate. */
const daysMax = 3_650;
const dayMs = 86_400_000;
/** notBefore lies this far back, so a peer whose clock is a little behind accepts it. */
const clockSkewMs = 3_600_000;
const hostLengthMax = 253;
const baseHosts = ['localhost', '127.0.0.1', '::1'];

export const certFiles = { ca: 'ca.pem', caKey: 'ca-key.pem', cert: 'server.pem', key: 'server-key.pem' } as const;

export interface CertsOptions {
  dir: string;
  hosts: readonly string[];
  days: number;
  force: boolean;
  nowMs: number;
}

/** Writes the CA and the server certificate; returns the four paths. */
export function createCerts(o: CertsOptions): Record<keyof typeof certFiles, string> {
  const paths = {
    ca: join(o.dir, certFiles.ca), caKey: join(o.dir, certFiles.caKey), cert: join(o.dir, certFiles.cert), key: join(o.dir, certFiles.key),
  };
  const present = Object.values(paths).filter((p) => existsSync(p));
  if (present.length > 0 && !o.force) throw new CliError(`${present.join(', ')} already exist; add --force to replace them (every component must then get the new CA)`);
  const notBefore = new Date(o.nowMs - clockSkewMs);
  const notAfter = new Date(o.nowMs + o.days * dayMs);
  const ca = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const server = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const issuer = { commonName: 'dirigent test CA', ...ca };
  const caDer = buildCertificate({ commonName: issuer.commonName, publicKey: ca.publicKey, issuer, notBefore, notAfter, serial: serialFrom(randomBytes(16)), kind: { ca: true } });
  const hosts = [...new Set([...baseHosts, ...o.hosts])];
  const serverDer = buildCertificate({ commonName: o.hosts[0] ?? 'localhost', publicKey: server.publicKey, issuer, notBefore, notAfter, serial: serialFrom(randomBytes(16)), kind: { ca: false, hosts } });
  mkdirSync(o.dir, { recursive: true });
  writeFile(paths.caKey, ca.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, 0o600);
  writeFile(paths.key, server.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, 0o600);
  writeFile(paths.ca, pemOf(caDer), 0o644);
  writeFile(paths.cert, pemOf(serverDer), 0o644);
  return paths;
}

function writeFile(path: string, text: string, mode: number): void {
  writeFileSync(path, text, { mode });
  // The mode option applies only to a new file: --force over an old one keeps its mode otherwise.
  chmodSync(path, mode);
}

export function parseHosts(text: string): string[] {
  const hosts = text.split(',').map((h) => h.trim()).filter((h) => h !== '');
  for (const h of hosts) {
    if (h.length > hostLengthMax || !/^[A-Za-z0-9.:*-]+$/.test(h)) throw usageError(`--hosts: ${JSON.stringify(h)} is not a host name or IP address`);
  }
  return hosts;
}

function parseDays(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > daysMax) throw usageError(`--days must be an integer in [1, ${daysMax}], got ${text}`);
  return n;
}

export function registerCertsCommand(program: Command): void {
  const certs = program.command('certs').description('TLS certificates for a test cluster');
  certs.command('create')
    .description('make a private CA and a server certificate signed by it (ECDSA P-256)')
    .option('--dir <dir>', 'where to write ca.pem, ca-key.pem, server.pem, server-key.pem', certsDirDefault)
    .option('--hosts <list>', 'more names/IPs the server certificate is valid for (always: localhost, 127.0.0.1, ::1)', '')
    .option('--days <n>', 'validity in days', String(daysDefault))
    .option('--force', 'replace existing files')
    .addHelpText('after', '\nExample:\n  dirigent certs create --hosts cp1.example.net,10.0.0.5\n  dirigent control-plane --tls-cert-file .dirigent/tls/server.pem --tls-key-file .dirigent/tls/server-key.pem\n')
    .action((opts: { dir: string; hosts: string; days: string; force?: boolean }, cmd: Command) => {
      const ctx = cliContext(cmd);
      const dir = isAbsolute(opts.dir) ? opts.dir : join(ctx.cwd, opts.dir);
      // The CLI shell owns the clock; createCerts takes the time it is given.
      const paths = createCerts({ dir, hosts: parseHosts(opts.hosts), days: parseDays(opts.days), force: opts.force === true, nowMs: Date.now() });
      ctx.stdout.write(`CA certificate:     ${paths.ca}\nCA key:             ${paths.caKey}\nserver certificate: ${paths.cert}\nserver key:         ${paths.key}\n`);
    });
}
