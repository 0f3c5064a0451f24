/**
 * Goal: async invocations are executed at least once (issue #11, part 6). 10,000 invocations are
 * submitted to a function that records every execution (its id and attempt, sent by the DP as
 * x-dirigent-invocation-id / x-dirigent-attempt) while the data plane is SIGKILLed three times and
 * the control plane once (SQLite store, then Redis), and, with Redis and two DPs, one DP is
 * SIGKILLed and stays dead. Every accepted invocation must reach succeeded and have run; the
 * duplicate executions are reported and bounded.
 * Method: real CP, DPs, worker (process runtime) and redis-server; the async-recorder fixture.
 * The client submits 64 at a time with an Idempotency-Key each and retries a failed submit (DP
 * down) until it gets 202, as a client would: only 202 answers count as accepted. Nothing asserts
 * a duration; every wait is bounded.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { fixture, freePort, sleep, stopProc, TestCluster, waitFor, type Proc } from './harness.js';
import { redisServerAvailable, TestRedis } from './redis.js';
import { asyncUnrecordedMax } from '../data-plane/async/dispatcher.js';

const invocationsTotal = 10_000;
const submitsInFlight = 64;
/** The recorder: 2 sandboxes x 64 slots, fixed, so the async capacity is the same all run. */
const sandboxes = 2;
const slotsPerSandbox = 64;
const asyncShare = 0.5;
/** Short, so the invocations a killed DP was running are claimed again soon. */
const claimLeaseMs = 3_000;
const submitRetryPauseMs = 100;
/** A submit is retried while a DP restarts (a few seconds); this many tries means it is not coming back. */
const submitTriesMax = 600;
const dpBackWaitMs = 20_000;
const allSucceededWaitMs = 150_000;
const scenarioTimeoutMs = 240_000;

const redisMissing = !redisServerAvailable() && process.env.CI !== 'true' ? 'redis-server is not installed' : false;
const asyncHeaders = (key: string): Record<string, string> => ({ prefer: 'respond-async', 'idempotency-key': key });

/** A data plane of the test: its ports and state dir stay across restarts. */
interface Dp {
  name: string;
  proxyPort: number;
  internalPort: number;
  stateDir: string;
  proc: Proc | null;
  restarts: number;
}

class Scenario {
  readonly c: TestCluster;
  readonly dps: Dp[] = [];
  readonly accepted = new Map<string, string>();
  /** Accepted outside the 10,000 (the header check): they may run but are not counted. */
  readonly otherIds = new Set<string>();
  readonly recordFile: string;
  /** For each DP kill: dirigent_dp_async_held and _unrecorded read just before it (a diagnostic). */
  readonly heldAtKills: number[] = [];
  readonly unrecordedAtKills: number[] = [];
  /** When each DP kill happened (to match re-runs against kills in the logs). */
  readonly killTimes: string[] = [];
  /** Seconds since the run began at each step (kills, restarts, all accepted, all succeeded). */
  readonly steps: string[] = [];
  private runStartMs = Date.now();
  step(what: string): void {
    this.steps.push(`${what}@${((Date.now() - this.runStartMs) / 1000).toFixed(1)}`);
  }

  constructor(private readonly dpArgs: string[]) {
    // Unisolated: the recorder writes to a file of the test (walls are sandbox-walls.test.ts's).
    this.c = new TestCluster({ workers: 1, dpArgs, workerArgs: ['--isolation', 'none'] });
    this.recordFile = join(this.c.stateDir, 'executions.log');
  }

  async start(dpCount: number): Promise<void> {
    await this.c.start();
    this.dps.push({ name: 'data-plane', proxyPort: this.c.proxyPort, internalPort: this.c.internalPort, stateDir: join(this.c.stateDir, 'dp'), restarts: 0, proc: this.c.procs.find((p) => p.name === 'data-plane')! });
    for (let i = 1; i < dpCount; i += 1) {
      const [proxyPort, internalPort] = await Promise.all([freePort(), freePort()]);
      const dp: Dp = { name: `data-plane-${i + 1}`, proxyPort, internalPort, stateDir: join(this.c.stateDir, `dp${i + 1}`), restarts: 0, proc: null };
      this.dps.push(dp);
      await this.spawnDp(dp);
    }
    const spec = { name: 'rec', command: ['node', fixture('async-recorder.js'), this.recordFile], concurrency: slotsPerSandbox, scaling: { min: sandboxes, max: sandboxes, initial: sandboxes } };
    const r = await this.c.deploy(spec);
    assert.equal(r.status, 201, r.text);
    await waitFor(async () => (await this.c.status('rec')).ready === sandboxes, 30_000, `${sandboxes} recorder sandboxes ready`)
      .catch((err: Error) => { throw new Error(`${err.message}\n${this.c.dumpLogs()}`); });
  }

  async spawnDp(dp: Dp): Promise<void> {
    const c = this.c;
    dp.proc = c.spawn(`${dp.name}-${dp.restarts}`, ['data-plane', '--id', dp.name, '--control-plane', `127.0.0.1:${c.rpcPort}`, '--proxy-port', String(dp.proxyPort),
      '--internal-port', String(dp.internalPort), '--cluster-token-file', c.clusterTokenFile, '--state-dir', dp.stateDir, ...this.dpArgs]);
    await waitFor(async () => (await c.get(`http://127.0.0.1:${dp.internalPort}/health`).catch(() => ({ status: 0 }))).status === 200, dpBackWaitMs, `${dp.name} healthy`);
  }

  proxyOf(dp: Dp): string {
    return `http://127.0.0.1:${dp.proxyPort}`;
  }

  alive(): Dp[] {
    return this.dps.filter((d) => d.proc !== null);
  }

  /** SIGKILL a DP; restarted on the same ports and state dir unless `staysDead`. */
  async killDp(dp: Dp, staysDead: boolean): Promise<void> {
    const m = await this.c.get(`http://127.0.0.1:${dp.internalPort}/metrics`).catch(() => null);
    this.heldAtKills.push(Number(/^dirigent_dp_async_held (\d+)/m.exec(m?.text ?? '')?.[1] ?? -1));
    this.unrecordedAtKills.push(Number(/^dirigent_dp_async_unrecorded (\d+)/m.exec(m?.text ?? '')?.[1] ?? -1));
    const proc = dp.proc!;
    this.killTimes.push(new Date().toISOString());
    dp.proc = null;
    await stopProc(proc, 'SIGKILL');
    this.step(`${dp.name}-killed`);
    if (staysDead) return;
    dp.restarts += 1;
    await this.spawnDp(dp);
    this.step(`${dp.name}-back`);
  }

  /** One client: takes the next index, submits until a 202 (any DP alive), records the id. */
  async client(next: () => number): Promise<void> {
    for (let i = next(); i < invocationsTotal; i = next()) {
      const key = `alo-${i}`;
      for (let tries = 0; ; tries += 1) {
        const live = this.alive();
        const dp = live[(i + tries) % Math.max(1, live.length)];
        const r = dp ? await this.c.send('POST', `${this.proxyOf(dp)}/n/${i}`, key, { host: 'rec', ...asyncHeaders(key) }, true).catch(() => null) : null;
        if (r?.status === 202) {
          this.accepted.set(key, (r.json as { id: string }).id);
          break;
        }
        if (tries >= submitTriesMax) throw new Error(`${key} not accepted after ${tries} tries, last answer ${r ? `${r.status} ${r.text}` : 'none'}`);
        // 503 while the DP starts, a refused or reset connection while it is down: try again.
        await sleep(submitRetryPauseMs);
      }
    }
  }

  /** Submits all invocations with `submitsInFlight` clients while `chaos` runs its kills. */
  async run(chaos: (acceptedAtLeast: (n: number) => Promise<void>) => Promise<void>): Promise<void> {
    this.runStartMs = Date.now();
    let n = 0;
    const next = (): number => n++;
    const clients = Array.from({ length: submitsInFlight }, () => this.client(next));
    const acceptedAtLeast = (k: number): Promise<void> => waitFor(() => this.accepted.size >= k, allSucceededWaitMs, `${k} accepted`);
    await Promise.all([Promise.all(clients).then(() => this.step('all-accepted')), chaos(acceptedAtLeast)]);
  }

  /** Ids of `rec` invocations in a status, from every page of the list. */
  async listed(status: string): Promise<Set<string>> {
    const ids = new Set<string>();
    let cursor = '';
    for (;;) {
      const dp = this.alive()[0]!;
      const q = `function=rec&status=${status}&limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const r = await this.c.get(`${this.proxyOf(dp)}/v1/invocations?${q}`);
      assert.equal(r.status, 200, r.text);
      const page = r.json as { items: { id: string }[]; nextCursor?: string };
      for (const item of page.items) ids.add(item.id);
      if (!page.nextCursor || page.items.length === 0) return ids;
      cursor = page.nextCursor;
    }
  }

  async waitAllSucceeded(): Promise<void> {
    const want = new Set(this.accepted.values());
    let missing = want.size;
    await waitFor(async () => {
      // Cheap first (one id per unfinished status), the full listing only once nothing is left.
      if (!(await this.noneIn('queued')) || !(await this.noneIn('running'))) return false;
      const done = await this.listed('succeeded');
      missing = [...want].filter((id) => !done.has(id)).length;
      if (missing > 0) await sleep(500);
      return missing === 0;
    }, allSucceededWaitMs, `every accepted invocation succeeded (last count: ${missing} not yet)`).catch((err: Error) => {
      throw new Error(`${err.message} (${missing} of ${want.size} not succeeded)\n${this.c.dumpLogs()}`);
    });
    this.step('all-succeeded');
  }

  async noneIn(status: string): Promise<boolean> {
    const r = await this.c.get(`${this.proxyOf(this.alive()[0]!)}/v1/invocations?function=rec&status=${status}&limit=1`);
    return r.status === 200 && (r.json as { items: unknown[] }).items.length === 0;
  }

  /** Executions per id from the record file: every line is one execution (`<id> <attempt>`). */
  executions(): Map<string, string[]> {
    const runs = new Map<string, string[]>();
    for (const line of readFileSync(this.recordFile, 'utf8').split('\n')) {
      if (line === '') continue;
      const [id, attempt] = line.split(' ');
      runs.set(id!, [...(runs.get(id!) ?? []), attempt!]);
    }
    return runs;
  }

  /**
   * Every accepted id ran at least once and every executed id was accepted; duplicates (runs
   * beyond the first per id) are reported and at most `bound`.
   */
  verify(t: TestContext, label: string, bound: number, startedMs: number): void {
    const runs = this.executions();
    const want = new Set(this.accepted.values());
    const neverRan = [...want].filter((id) => !runs.has(id));
    assert.deepEqual(neverRan.slice(0, 10), [], `${neverRan.length} accepted invocations never ran`);
    const unknown = [...runs.keys()].filter((id) => !want.has(id) && !this.otherIds.has(id));
    assert.deepEqual(unknown.slice(0, 10), [], `${unknown.length} executed ids were never accepted`);
    let lines = 0;
    for (const r of runs.values()) lines += r.length;
    const duplicates = lines - runs.size;
    const sameAttempt = [...runs.values()].filter((r) => new Set(r).size < r.length).length;
    // How the re-run ids ran: "1,1" = attempt 1 twice (cut off by a kill), "1,2" = retried after a failed attempt.
    const patterns: Record<string, number> = {};
    for (const r of runs.values()) if (r.length > 1) patterns[r.join(',')] = (patterns[r.join(',')] ?? 0) + 1;
    const note = `${label}: accepted ${want.size}, executions ${lines}, duplicates ${duplicates} (${sameAttempt} ids re-run with the same attempt number; `
      + `runs of re-run ids ${JSON.stringify(patterns)}), bound ${bound}, held / unrecorded at the DP kills ${JSON.stringify(this.heldAtKills)} / ${JSON.stringify(this.unrecordedAtKills)} at ${JSON.stringify(this.killTimes)}, `
      + `steps ${this.steps.join(' ')}, wall ${Math.round((Date.now() - startedMs) / 1000)} s`;
    t.diagnostic(note);
    console.log(`async-at-least-once ${note}`);
    assert.equal(want.size, invocationsTotal);
    assert.ok(duplicates <= bound, note);
  }

  async stop(): Promise<void> {
    await this.c.stop();
  }
}

/**
 * The bound on duplicates: a kill re-runs only invocations whose execution had started and whose
 * finishing store write had not resolved. The dispatcher starts one only while fewer than
 * `asyncUnrecordedMax` are running or answered and still being recorded (and fewer than
 * `capacity(fn)` run), so each DP kill adds at most that many. A CP kill adds none: the DPs and
 * sandboxes keep running. This holds while no live DP lets a lease lapse (renewed every
 * lease/3), which the short lease risks only under a stall of seconds.
 */
const duplicateBound = (dpKills: number): number => dpKills * asyncUnrecordedMax;

const dpArgs = (store: string[]): string[] => [...store, '--async-claim-lease-ms', String(claimLeaseMs), '--async-concurrency-share', String(asyncShare)];

async function killThreeDpsAndTheCp(s: Scenario, acceptedAtLeast: (n: number) => Promise<void>): Promise<void> {
  const dp = s.dps[0]!;
  await acceptedAtLeast(1_500);
  await s.killDp(dp, false);
  await acceptedAtLeast(3_500);
  s.step('cp-kill');
  await s.c.restartControlPlane();
  s.step('cp-back');
  await acceptedAtLeast(5_000);
  await s.killDp(dp, false);
  await acceptedAtLeast(7_500);
  await s.killDp(dp, false);
}

describe('at least once: SQLite store, 1 DP SIGKILLed 3 times, the CP once', { timeout: scenarioTimeoutMs }, () => {
  const s = new Scenario(dpArgs([]));
  before(() => s.start(1));
  after(() => s.stop());

  it('the DP sets the invocation id and attempt on async executions only; a client cannot set them', async () => {
    const forged = { 'x-dirigent-invocation-id': 'forged', 'x-dirigent-attempt': '9' };
    const sync = await s.c.invoke('rec', { headers: forged });
    assert.equal(sync.status, 200, sync.text);
    assert.deepEqual(sync.json, { id: null, attempt: null });
    const r = await s.c.invoke('rec', { method: 'POST', headers: { prefer: 'respond-async', ...forged }, body: 'x' });
    assert.equal(r.status, 202, r.text);
    const id = (r.json as { id: string }).id;
    let v: { status: string; result?: { body?: string } } = { status: '?' };
    await waitFor(async () => (v = (await s.c.get(`${s.c.proxy}/v1/invocations/${id}`)).json as typeof v).status === 'succeeded', 20_000, 'probe succeeded');
    assert.deepEqual(JSON.parse(v.result!.body!), { id, attempt: '1' });
    s.otherIds.add(id);
  });

  it(`${invocationsTotal} accepted invocations all succeed; duplicates bounded`, async (t) => {
    const startedMs = Date.now();
    await s.run((atLeast) => killThreeDpsAndTheCp(s, atLeast));
    await s.waitAllSucceeded();
    s.verify(t, 'sqlite', duplicateBound(3), startedMs);
  });
});

describe('at least once: Redis store, 1 DP SIGKILLed 3 times, the CP once', { timeout: scenarioTimeoutMs, skip: redisMissing }, () => {
  const redis = new TestRedis();
  let s: Scenario;
  before(async () => {
    await redis.start();
    s = new Scenario(dpArgs(['--async-store', redis.url]));
    await s.start(1);
  });
  after(async () => {
    await s?.stop();
    await redis.destroy();
  });

  it(`${invocationsTotal} accepted invocations all succeed; duplicates bounded`, async (t) => {
    const startedMs = Date.now();
    await s.run((atLeast) => killThreeDpsAndTheCp(s, atLeast));
    await s.waitAllSucceeded();
    s.verify(t, 'redis', duplicateBound(3), startedMs);
  });
});

describe('at least once: Redis store, 2 DPs, one SIGKILLed for good', { timeout: scenarioTimeoutMs, skip: redisMissing }, () => {
  const redis = new TestRedis();
  let s: Scenario;
  before(async () => {
    await redis.start();
    s = new Scenario(dpArgs(['--async-store', redis.url]));
    await s.start(2);
  });
  after(async () => {
    await s?.stop();
    await redis.destroy();
  });

  it(`${invocationsTotal} accepted invocations all succeed through the surviving DP; duplicates bounded`, async (t) => {
    const startedMs = Date.now();
    await s.run(async (atLeast) => {
      await atLeast(4_000);
      await s.killDp(s.dps[0]!, true);
    });
    await s.waitAllSucceeded();
    s.verify(t, 'redis-2dp', duplicateBound(1), startedMs);
  });
});
