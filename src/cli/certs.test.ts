/**
 * `dirigent certs create`: the CA signs the server certificate, the SANs and constraints are
 * right, keys are 0600, nothing is overwritten without --force, and the pair serves TLS that a
 * client trusting only ca.pem accepts for localhost, 127.0.0.1 and ::1.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, get } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCerts } from './certs.js';
import { runCli } from './program.js';

const nowMs = Date.UTC(2026, 0, 15);
const dayMs = 86_400_000;

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'dirigent-certs-'));
}

describe('certs create', () => {
  it('makes a CA that signs a server certificate with the SANs asked for', () => {
    const dir = tempDir();
    try {
      const p = createCerts({ dir, hosts: ['cp1.example.net', '10.0.0.5'], days: 30, force: false, nowMs });
      const ca = new X509Certificate(readFileSync(p.ca));
      const server = new X509Certificate(readFileSync(p.cert));
      assert.ok(ca.ca, 'the CA certificate may sign');
      assert.ok(!server.ca, 'the server certificate may not');
      assert.ok(ca.checkIssued(ca) && ca.verify(ca.publicKey), 'the CA is self-signed');
      assert.ok(server.checkIssued(ca), 'issued by the CA');
      assert.ok(server.verify(ca.publicKey), 'signed with the CA key');
      assert.equal(server.subjectAltName, 'DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, DNS:cp1.example.net, IP Address:10.0.0.5');
      assert.equal(server.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
      assert.equal(new Date(server.validTo).getTime(), nowMs + 30 * dayMs);
      assert.ok(new Date(server.validFrom).getTime() < nowMs);
      for (const key of [p.caKey, p.key]) assert.equal(statSync(key).mode & 0o777, 0o600, key);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to overwrite without --force, and replaces with it', async () => {
    const dir = tempDir();
    try {
      const out: string[] = [];
      const io = { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => out.push(s) }, cwd: dir };
      assert.equal(await runCli(['certs', 'create', '--dir', 'tls'], io), 0);
      assert.match(out.join(''), /server-key\.pem/);
      const first = readFileSync(join(dir, 'tls', 'ca.pem'), 'utf8');
      assert.equal(await runCli(['certs', 'create', '--dir', 'tls'], io), 1);
      assert.match(out.join(''), /already exist; add --force/);
      assert.equal(readFileSync(join(dir, 'tls', 'ca.pem'), 'utf8'), first, 'nothing replaced');
      assert.equal(await runCli(['certs', 'create', '--dir', 'tls', '--force'], io), 0);
      assert.notEqual(readFileSync(join(dir, 'tls', 'ca.pem'), 'utf8'), first);
      assert.equal(await runCli(['certs', 'create', '--dir', 'x', '--days', '0'], io), 2);
      assert.equal(await runCli(['certs', 'create', '--dir', 'x', '--hosts', 'a b'], io), 2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('serves TLS that a client trusting only ca.pem accepts on localhost, 127.0.0.1 and ::1', async () => {
    const dir = tempDir();
    const p = createCerts({ dir, hosts: [], days: 1, force: false, nowMs: Date.now() });
    const server = createServer({ cert: readFileSync(p.cert), key: readFileSync(p.key) }, (_req, res) => res.end('ok'));
    try {
      await new Promise<void>((r) => server.listen(0, '::', () => r()));
      const port = (server.address() as { port: number }).port;
      for (const host of ['localhost', '127.0.0.1', '::1']) {
        const body = await new Promise<string>((resolve, reject) => {
          get({ host, port, path: '/', ca: readFileSync(p.ca) }, (res) => {
            let text = '';
            res.on('data', (b: Buffer) => (text += b.toString()));
            res.on('end', () => resolve(text));
          }).on('error', reject);
        });
        assert.equal(body, 'ok', host);
      }
      const untrusted = await new Promise<Error>((resolve) => get({ host: '127.0.0.1', port, path: '/' }, () => resolve(new Error('accepted'))).on('error', resolve));
      assert.match(untrusted.message, /self-signed|unable to verify|certificate/);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
