/**
 * @module shared/tls-files
 * Reads the files a component's links depend on at start: TLS certificates, keys, CAs and the
 * cluster token. A missing or unreadable file is a configuration error naming the flag and the
 * path (one line, exit 2), never a stack trace later on the first connection.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from '../config/compile.js';
import type { ServerTls } from './grpc.js';
import { readOrCreateTokenFile, readTokenFile, sha256Hex } from './secrets.js';

function readPem(flag: string, path: string): Buffer {
  let pem: Buffer;
  try {
    pem = readFileSync(path);
  } catch (err) {
    throw new ConfigError(`--${flag} ${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  if (!pem.includes('-----BEGIN ')) throw new ConfigError(`--${flag} ${path}: not a PEM file`);
  return pem;
}

/** The certificate and key a server presents; both or neither must be given. */
export function serverTlsOf(component: string, certFile: string, keyFile: string): ServerTls | null {
  if (certFile === '' && keyFile === '') return null;
  if (certFile === '' || keyFile === '') {
    throw new ConfigError(`${component}: --tls-cert-file and --tls-key-file go together (got only ${certFile === '' ? '--tls-key-file' : '--tls-cert-file'})`);
  }
  return { certPem: readPem('tls-cert-file', certFile), keyPem: readPem('tls-key-file', keyFile) };
}

/** The CA a client trusts for the CP's certificate ('' = plain TCP: null). */
export function caOf(caFile: string): Buffer | null {
  return caFile === '' ? null : readPem('tls-ca-file', caFile);
}

/**
 * A worker's or DP's cluster token: read now (a missing file stops the start), then re-read at
 * every stream open so that fixing the file heals a refused link; an unreadable file later
 * keeps the last good token.
 */
export function clusterTokenReader(path: string): () => string {
  let current: string;
  try {
    current = readTokenFile(path);
  } catch (err) {
    throw new ConfigError(`--cluster-token-file ${path}: ${tokenFileProblem(err)} (copy the control plane's cluster.token there)`);
  }
  return () => {
    try {
      current = readTokenFile(path);
    } catch {
      // Keep the last good token; the refusal log names the file.
    }
    return current;
  };
}

/** The CP's cluster token digest, the file created (0600) when missing. */
export function clusterTokenDigestOf(path: string): { sha256Hex: string; created: boolean } {
  try {
    const { token, created } = readOrCreateTokenFile(path);
    return { sha256Hex: sha256Hex(token), created };
  } catch (err) {
    // Two CPs sharing a state dir may race to create it: the loser reads the winner's.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return clusterTokenDigestOf(path);
    throw new ConfigError(`--cluster-token-file ${path}: ${tokenFileProblem(err)}`);
  }
}

function tokenFileProblem(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  if (code !== undefined) return `cannot read it (${code})`;
  return (err as Error).message;
}
