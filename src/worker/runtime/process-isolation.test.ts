/**
 * The walls of an isolated (bwrap) process sandbox, probed from INSIDE real sandboxes by
 * test/fixtures/wall-probe.js: own uid, no capabilities, no new privileges, own pid namespace,
 * no view of /root or the worker's state dir, a size-limited private /tmp, an OOM kill reported
 * as such, a pids limit, and (with the packet filter loaded) no connection to this host's
 * services or to another sandbox, and no private address even with egress. Ports 32000-32499.
 * Needs root, bwrap, setpriv and nft: skipped with the package named elsewhere, failing in CI.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { memoryLogger } from '../../shared/logger.js';
import { isolationUnusableReason } from './isolation-setup.js';
import { fixtureSpec, portSlices, withRuntime, type HarnessOptions } from './process-runtime.testkit.js';
import { expectCreated, httpGet } from './runtime.contract.js';
import { installSandboxFirewall, nftPath, type SandboxFirewall } from './sandbox-firewall.js';
import { createSandboxUids } from './sandbox-uids.js';

const testTimeoutMs = 30_000;
const nextPortRange = portSlices(32_000, 32_499).next;
/** A uid range of this file's own, so no other suite's sandbox shares a uid with ours. */
const uidRange = [230_000, 230_999] as const;
const unusable = await isolationUnusableReason();
if (unusable !== undefined && process.env.CI === 'true') {
  throw new Error(`CI must run the isolation walls, but ${unusable}`);
}
const skip = unusable === undefined ? undefined : `sandbox isolation unusable here: ${unusable}`;

type Probe = Record<string, unknown>;

async function probe(address: string, query: string): Promise<Probe> {
  const answer = await httpGet(address, 'probe', {}, `/check?${query}`);
  assert.equal(answer.status, 200, answer.body);
  return JSON.parse(answer.body) as Probe;
}

function opts(over: Partial<HarnessOptions> = {}): HarnessOptions {
  return { portRange: nextPortRange(), uids: createSandboxUids(uidRange), ...over };
}

describe('isolated sandbox: identity and file system', { skip, timeout: testTimeoutMs }, () => {
  it('runs as its own pool uid, with no capabilities, no new privileges, its own pids', () =>
    withRuntime(opts(), async ({ runtime }) => {
      const fn = fixtureSpec('f', 'wall-probe.js');
      const a = expectCreated(await runtime.create({ sandboxId: 'sb-a', fn }));
      const b = expectCreated(await runtime.create({ sandboxId: 'sb-b', fn }));
      const idA = await probe(a.address, 'what=identity');
      const idB = await probe(b.address, 'what=identity');
      for (const id of [idA, idB]) {
        assert.ok(Number(id.uid) >= uidRange[0] && Number(id.uid) <= uidRange[1], `uid ${id.uid}`);
        assert.equal(id.gid, id.uid);
        assert.equal(id.capEff, '0000000000000000');
        assert.equal(id.capBnd, '0000000000000000');
        assert.equal(id.noNewPrivs, '1');
        // Its own pid namespace: bwrap's init, setpriv/node and maybe a thread-less helper.
        assert.ok((id.pids as number[]).every((pid) => pid < 10), `pids ${String(id.pids)}`);
        assert.ok(!(id.pids as number[]).includes(process.pid));
      }
      assert.notEqual(idA.uid, idB.uid);
    }),
  );

  it('sees neither /root, /home, /var nor the worker state dir; /tmp is private and bounded', () =>
    withRuntime(opts({ sandboxTmpMiB: 8 }), async ({ runtime, stateDir }) => {
      const fn = fixtureSpec('f', 'wall-probe.js');
      const sb = expectCreated(await runtime.create({ sandboxId: 'sb-fs', fn }));
      for (const path of ['/root', '/home', '/var', stateDir, '/etc/shadow']) {
        const answer = await probe(sb.address, `what=read&path=${encodeURIComponent(path)}`);
        assert.equal(answer.readable, false, path);
      }
      assert.equal((await probe(sb.address, 'what=read&path=/etc/passwd')).readable, true);
      assert.deepEqual(await probe(sb.address, 'what=tmp&mib=4'), { ok: true });
      assert.deepEqual(await probe(sb.address, 'what=tmp&mib=16'), { ok: false, code: 'ENOSPC' });
    }),
  );
});

describe('isolated sandbox: limits', { skip, timeout: testTimeoutMs }, () => {
  it('an allocation past the memory limit kills it, and the crash says out of memory', () =>
    withRuntime(opts(), async ({ runtime }) => {
      const crashed = new Promise<[string, string]>((resolve) => runtime.onExit((id, why) => resolve([id, why])));
      const fn = fixtureSpec('f', 'wall-probe.js');
      fn.resources = { cpuMillis: 1000, memoryMiB: 64 };
      const sb = expectCreated(await runtime.create({ sandboxId: 'sb-oom', fn }));
      await probe(sb.address, 'what=alloc&mib=200').catch(() => undefined); // it dies answering
      assert.deepEqual(await crashed, ['sb-oom', 'out of memory: killed at its 64 MiB limit']);
    }),
  );

  it('a death by signal is reported as the signal, not as bwrap\'s exit code', () =>
    withRuntime(opts(), async ({ runtime }) => {
      const crashed = new Promise<[string, string]>((resolve) => runtime.onExit((id, why) => resolve([id, why])));
      const sb = expectCreated(await runtime.create({ sandboxId: 'sb-sig', fn: fixtureSpec('f', 'wall-probe.js') }));
      await probe(sb.address, 'what=die&signal=SIGSEGV').catch(() => undefined);
      assert.deepEqual(await crashed, ['sb-sig', 'signal SIGSEGV']);
    }),
  );

  it('a start that runs out of memory fails the create with that reason', () =>
    withRuntime(opts(), async ({ runtime }) => {
      const fn = fixtureSpec('f', 'wall-probe.js', { ALLOC_AT_START_MIB: '200' });
      fn.resources = { cpuMillis: 1000, memoryMiB: 64 };
      const result = await runtime.create({ sandboxId: 'sb-oom-start', fn });
      assert.deepEqual(result, { ok: false, reason: 'exited during start: out of memory: killed at its 64 MiB limit' });
    }),
  );

  it('forking past the pids limit fails with EAGAIN', () =>
    withRuntime(opts({ sandboxPidsMax: 40 }), async ({ runtime }) => {
      const fn = fixtureSpec('f', 'wall-probe.js');
      const sb = expectCreated(await runtime.create({ sandboxId: 'sb-pids', fn }));
      const answer = await probe(sb.address, 'what=fork&n=60');
      assert.ok(Number(answer.spawned) < 40, JSON.stringify(answer));
      assert.ok(Number((answer.errors as Record<string, number>).EAGAIN) > 0, JSON.stringify(answer));
    }),
  );
});

describe('isolated sandbox: network', { skip, timeout: testTimeoutMs }, () => {
  const uids = createSandboxUids(uidRange);
  let firewall: SandboxFirewall;
  let hostService: Server;
  let hostPort: number;
  /** Stands in for the host's DNS resolver (a TCP listener on 127.0.0.1:53), if 53 was free. */
  let resolver: Server | undefined;
  before(async () => {
    const denyCidrs = ['10.0.0.0/8', '169.254.0.0/16', 'fc00::/7'];
    const nameservers = ['127.0.0.1'];
    firewall = await installSandboxFirewall({ stateDir: '/nonexistent/isolation-test', ranges: uids.ranges, denyCidrs, nameservers, log: memoryLogger([]) });
    resolver = await new Promise<Server | undefined>((done) => {
      const server = createServer((s) => s.end());
      server.once('error', () => done(undefined));
      server.listen(53, '127.0.0.1', () => done(server));
    });
    // Stands in for the CP's API and RPC ports, the DP, the worker: a service on this host.
    hostService = createServer((s) => s.end('hello'));
    await new Promise<void>((done) => hostService.listen(0, '127.0.0.1', done));
    hostPort = (hostService.address() as { port: number }).port;
  });
  after(async () => {
    await firewall?.close();
    await new Promise((done) => hostService?.close(done));
    if (resolver) await new Promise((done) => resolver?.close(done));
  });

  it('a sandbox without egress reaches neither host services nor another sandbox', () =>
    withRuntime(opts({ uids }), async ({ runtime }) => {
      const fn = fixtureSpec('f', 'wall-probe.js');
      const a = expectCreated(await runtime.create({ sandboxId: 'sb-n1', fn }));
      const b = expectCreated(await runtime.create({ sandboxId: 'sb-n2', fn }));
      const [bHost, bPort] = b.address.split(':');
      assert.deepEqual(await probe(a.address, `what=connect&host=127.0.0.1&port=${hostPort}`), { ok: false, code: 'ECONNREFUSED' });
      assert.deepEqual(await probe(a.address, `what=connect&host=${bHost}&port=${bPort}`), { ok: false, code: 'ECONNREFUSED' });
      assert.deepEqual(await probe(a.address, 'what=connect&host=10.1.2.3&port=80'), { ok: false, code: 'ECONNREFUSED' });
      if (resolver) assert.deepEqual(await probe(a.address, 'what=connect&host=127.0.0.1&port=53'), { ok: false, code: 'ECONNREFUSED' });
      // The refusals are the filter's: from outside both answer.
      assert.equal((await httpGet(b.address, 'sb-n2', {}, '/check?what=identity')).status, 200);
    }),
  );

  it('with egress: host services and private ranges are still refused', () =>
    withRuntime(opts({ uids }), async ({ runtime }) => {
      const fn = { ...fixtureSpec('f', 'wall-probe.js'), egress: true };
      const sb = expectCreated(await runtime.create({ sandboxId: 'sb-e', fn }));
      const id = await probe(sb.address, 'what=identity');
      assert.ok(Number(id.uid) >= uids.ranges.egress[0], `egress uid ${id.uid}`);
      assert.deepEqual(await probe(sb.address, `what=connect&host=127.0.0.1&port=${hostPort}`), { ok: false, code: 'ECONNREFUSED' });
      assert.deepEqual(await probe(sb.address, 'what=connect&host=10.1.2.3&port=80'), { ok: false, code: 'ECONNREFUSED' });
      assert.deepEqual(await probe(sb.address, 'what=connect&host=169.254.169.254&port=80'), { ok: false, code: 'ECONNREFUSED' });
      // ... but the resolver's port 53 is open, even on this host.
      if (resolver) assert.deepEqual(await probe(sb.address, 'what=connect&host=127.0.0.1&port=53'), { ok: true });
    }),
  );

  it('the table exists while installed, and is replaced (not duplicated) on a second install', async () => {
    const list = async (): Promise<string> => (await promisify(execFile)(nftPath, ['list', 'tables'])).stdout;
    assert.match(await list(), new RegExp(`table inet ${firewall.table}\\b`));
    const again = await installSandboxFirewall({ stateDir: '/nonexistent/isolation-test', ranges: uids.ranges, denyCidrs: [], log: memoryLogger([]) });
    assert.equal(again.table, firewall.table);
    assert.equal((await list()).split(firewall.table).length - 1, 1);
  });
});
