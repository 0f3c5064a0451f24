/**
 * Goal: the DP acks at once every routing update the CP may be waiting on (a snapshot, or a
 * delta changing functions, failures, tokens or peers), and acks deltas that only move endpoints
 * once per `deferMs`, carrying every version applied meanwhile; an ack armed on one stream is
 * never sent on the next.
 * Method: `needsPromptAck` on hand-built updates, one per delta list; `RoutingAcks` with a fake
 * clock of timers (virtual time) and a recorded `send`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RoutingDeltaMsg, RoutingUpdateMsg } from '../../api/cluster.js';
import { needsPromptAck } from '../core/routing-acks.js';
import { RoutingAcks } from './routing-acks.js';

const emptyDelta = (version: number): RoutingDeltaMsg => ({
  version, upsertFunctions: [], deleteFunctions: [], addEndpoints: [], removeEndpoints: [], drainEndpoints: [],
  failures: [], upsertTokens: [], revokeTokens: [], upsertPeers: [], removePeers: [],
});
const delta = (version: number, fields: Partial<RoutingDeltaMsg> = {}): RoutingUpdateMsg =>
  ({ case: 'delta', value: { ...emptyDelta(version), ...fields } });
const endpoint = { sandboxId: 's1', function: 'f', functionUid: 'f-1', address: 'h:1', workerId: 'w' };
const endpointMove = (version: number): RoutingUpdateMsg => delta(version, { addEndpoints: [endpoint] });

describe('needsPromptAck', () => {
  it('a snapshot is acked at once', () => {
    assert.equal(needsPromptAck({ case: 'snapshot', value: { version: 1, functions: [], endpoints: [], drainEndpoints: [], tokens: [] } }), true);
  });

  it('a delta that only adds, removes or drains endpoints can wait', () => {
    assert.equal(needsPromptAck(delta(2, { addEndpoints: [endpoint] })), false);
    assert.equal(needsPromptAck(delta(2, { removeEndpoints: ['s1'] })), false);
    assert.equal(needsPromptAck(delta(2, { drainEndpoints: ['s1'] })), false);
    assert.equal(needsPromptAck(delta(2)), false);
  });

  it('any other change is acked at once, beside endpoint moves or alone', () => {
    const spec = { name: 'f', uid: 'f-1', generation: 1, image: '', command: ['x'], port: 0, env: {}, egress: false, auth: 'none', concurrency: 1, timeoutMs: 1000, workingDir: '' };
    const others: Partial<RoutingDeltaMsg>[] = [
      { upsertFunctions: [spec] },
      { deleteFunctions: [{ name: 'f', uid: 'f-1' }] },
      { failures: [{ function: 'f', functionUid: 'f-1', code: 'unschedulable', reason: 'no worker fits' }] },
      { upsertTokens: [{ id: 't', sha256Hex: 'ab', scope: 'invoke', namespace: '' }] },
      { revokeTokens: ['t'] },
      { upsertPeers: [{ dataPlaneId: 'dp2', proxyAddress: 'h:2' }] },
      { removePeers: ['dp2'] },
    ];
    for (const fields of others) {
      assert.equal(needsPromptAck(delta(2, fields)), true, Object.keys(fields)[0]);
      assert.equal(needsPromptAck(delta(2, { ...fields, drainEndpoints: ['s1'] })), true, Object.keys(fields)[0]);
    }
  });

  it('a list the delta gains later is acked at once unless it is named as an endpoint move', () => {
    const update = delta(2);
    (update.value as unknown as Record<string, unknown>).somethingNew = [1];
    assert.equal(needsPromptAck(update), true);
  });
});

/** Timers in virtual time: `advance` fires the due ones in order. */
class FakeTimers {
  nowMs = 0;
  private next = 1;
  private readonly due = new Map<number, { atMs: number; fn: () => void }>();
  setTimer = (fn: () => void, ms: number): unknown => {
    const id = this.next++;
    this.due.set(id, { atMs: this.nowMs + ms, fn });
    return id;
  };
  clearTimer = (timer: unknown): void => {
    this.due.delete(timer as number);
  };
  get armed(): number {
    return this.due.size;
  }
  advance(ms: number): void {
    const until = this.nowMs + ms;
    for (;;) {
      const first = [...this.due.entries()].sort((a, b) => a[1].atMs - b[1].atMs)[0];
      if (!first || first[1].atMs > until) break;
      this.due.delete(first[0]);
      this.nowMs = first[1].atMs;
      first[1].fn();
    }
    this.nowMs = until;
  }
}

function setup(deferMs = 20) {
  const timers = new FakeTimers();
  const sent: number[] = [];
  const state = { version: 0, generation: 1 };
  const acks = new RoutingAcks({
    send: (v) => sent.push(v), version: () => state.version, generation: () => state.generation,
    setTimer: timers.setTimer, clearTimer: timers.clearTimer,
  }, deferMs);
  const apply = (update: RoutingUpdateMsg): void => {
    state.version = update.value.version;
    acks.applied(update);
  };
  return { timers, sent, state, acks, apply };
}

describe('RoutingAcks', () => {
  it('endpoint moves share one ack after the delay, carrying the last version applied', () => {
    const { timers, sent, apply } = setup(20);
    for (let v = 1; v <= 50; v++) {
      apply(endpointMove(v));
      timers.advance(0.3); // 50 deltas over 15 ms, each in its own turn
    }
    assert.deepEqual(sent, []);
    timers.advance(20);
    assert.deepEqual(sent, [50]);
    apply(endpointMove(51));
    timers.advance(19.9);
    assert.deepEqual(sent, [50]);
    timers.advance(0.1);
    assert.deepEqual(sent, [50, 51]);
  });

  it('a change the CP may wait on is acked at once and takes the armed ack with it', () => {
    const { timers, sent, apply } = setup(20);
    apply(endpointMove(1));
    apply(delta(2, { upsertFunctions: [{ name: 'f', uid: 'f-1', generation: 1, image: '', command: ['x'], port: 0, env: {}, egress: false, auth: 'none', concurrency: 1, timeoutMs: 1000, workingDir: '' }] }));
    assert.deepEqual(sent, [2]);
    assert.equal(timers.armed, 0);
    timers.advance(100);
    assert.deepEqual(sent, [2]);
    apply({ case: 'snapshot', value: { version: 7, functions: [], endpoints: [], drainEndpoints: [], tokens: [] } });
    assert.deepEqual(sent, [2, 7]);
  });

  it('an ack armed on one stream is not sent after the link reconnected', () => {
    const { timers, sent, state, apply } = setup(20);
    apply(endpointMove(1));
    state.generation += 1; // a new stream, maybe to another leader
    timers.advance(20);
    assert.deepEqual(sent, []);
    apply(endpointMove(2));
    timers.advance(20);
    assert.deepEqual(sent, [2]);
  });

  it('close disarms the pending ack', () => {
    const { timers, sent, acks, apply } = setup(20);
    apply(endpointMove(1));
    acks.close();
    timers.advance(100);
    assert.deepEqual(sent, []);
  });
});
