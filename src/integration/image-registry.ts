/**
 * @module integration/image-registry
 * Test fixtures for images: a real Docker registry (Debian `docker-registry`) on a free loopback
 * port with its storage in a fresh temp dir, stopped by PID; and the example image
 * (examples/hello-image/build.sh) built once per test process into an OCI archive.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { request } from 'undici';
import { freePort, waitFor } from './harness.js';

const execFileAsync = promisify(execFile);
/** Longest wait for the registry to answer /v2/ after a start. */
const registryReadyWaitMs = 15_000;
const registryStopGraceMs = 5_000;
/** Building the example (umoci + skopeo) takes ~1 s here; bound it generously. */
const imageBuildTimeoutMs = 120_000;

const repoRoot = resolve(import.meta.dirname, '..', '..');

export class TestRegistry {
  readonly dir = mkdtempSync(join(tmpdir(), 'dirigent-registry-'));
  port = 0;
  private proc: ChildProcess | null = null;
  private readonly logs: string[] = [];

  /** host:port, e.g. 127.0.0.1:41234. */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.port = await freePort();
    const config = join(this.dir, 'config.yml');
    writeFileSync(config, [
      'version: 0.1',
      'log: { level: warn }',
      `storage: { filesystem: { rootdirectory: ${join(this.dir, 'data')} }, delete: { enabled: true } }`,
      `http: { addr: "127.0.0.1:${this.port}" }`,
      '',
    ].join('\n'));
    const proc = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (b: Buffer): void => {
      this.logs.push(b.toString());
      if (this.logs.length > 100) this.logs.shift();
    };
    proc.stdout!.on('data', keep);
    proc.stderr!.on('data', keep);
    proc.on('error', (err) => this.logs.push(`spawn: ${err.message}`));
    this.proc = proc;
    await waitFor(async () => {
      if (proc.exitCode !== null) throw new Error(`docker-registry exited ${proc.exitCode}: ${this.logs.join('').slice(-800)}`);
      const r = await request(`http://${this.address}/v2/`, { headersTimeout: 1_000, bodyTimeout: 1_000 });
      await r.body.dump();
      return r.statusCode === 200;
    }, registryReadyWaitMs, 'docker-registry answering /v2/');
  }

  /** Pushes an OCI archive to `<registry>/<name>` (name with tag). */
  async push(archive: string, name: string): Promise<string> {
    const ref = `${this.address}/${name}`;
    await execFileAsync('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci-archive:${archive}`, `docker://${ref}`],
      { timeout: imageBuildTimeoutMs });
    return ref;
  }

  async stop(): Promise<void> {
    const proc = this.proc;
    this.proc = null;
    if (proc && proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), registryStopGraceMs);
      await exited;
      clearTimeout(t);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

let built: Promise<string> | undefined;

/** The example image as an OCI archive, built once per test process (kept in a temp dir). */
export function helloImageArchive(): Promise<string> {
  built ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dirigent-hello-image-'));
    const out = join(dir, 'hello-image.tar');
    await execFileAsync(join(repoRoot, 'examples', 'hello-image', 'build.sh'), [out], { timeout: imageBuildTimeoutMs });
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    return out;
  })();
  return built;
}

/** Why image tests cannot run here, or undefined. In CI every tool must be there (nothing skips). */
export async function imageToolsMissing(tools: readonly string[]): Promise<string | undefined> {
  const missing: string[] = [];
  for (const tool of tools) {
    try {
      await execFileAsync('sh', ['-c', `command -v ${tool}`]);
    } catch {
      missing.push(tool);
    }
  }
  // Unpacking layers (umoci), mounting overlays and running containers all need root.
  const notRoot = process.getuid?.() !== 0;
  if (missing.length === 0 && !notRoot) return undefined;
  const why = missing.length === 0
    ? 'needs root (image unpacking, overlay mounts, containers)'
    : `needs ${missing.join(', ')} (apt-get install ${missing.map(debianPackage).join(' ')})`;
  if (process.env.CI === 'true') throw new Error(`CI: ${why}`);
  return why;
}

function debianPackage(tool: string): string {
  return ({ 'docker-registry': 'docker-registry', busybox: 'busybox-static', nft: 'nftables', bwrap: 'bubblewrap' } as Record<string, string>)[tool] ?? tool;
}
