/**
 * Goal: the failover analysis counts, classifies and times exactly what the brief defines.
 * Method: hand-built request and /health records in virtual ms around a kill at 1000 ms.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import {
  bucketize,
  causes,
  failedInFlightAtKill,
  failoverPlan,
  failureCause,
  firstColdOkAfterMs,
  leaderBefore,
  newLeaderMs,
  recoveryMs,
  warmServedAgain,
  type HealthPoll,
  type RequestRecord,
} from './failover.js';

const killMs = 1000;

function req(sentMs: number, status = 200, o: Partial<RequestRecord> = {}): RequestRecord {
  return { kind: 'warm', fn: 0, sentMs, doneMs: sentMs + 5, status, error: '', body: '', ...o };
}

/** One warm request every 100 ms from 0 to `endMs`; failing where `failAt` says. */
function steady(endMs: number, failAt: (t: number) => boolean): RequestRecord[] {
  const out: RequestRecord[] = [];
  for (let t = 0; t <= endMs; t += 100) out.push(req(t, failAt(t) ? 503 : 200));
  return out;
}

test('causes: timeouts, connection errors by code, 5xx with the JSON error code', () => {
  assert.equal(failureCause({ status: 0, error: 'UND_ERR_HEADERS_TIMEOUT', body: '' }), 'timeout');
  assert.equal(failureCause({ status: 0, error: 'UND_ERR_BODY_TIMEOUT', body: '' }), 'timeout');
  assert.equal(failureCause({ status: 0, error: 'ECONNREFUSED', body: '' }),
    'connection:ECONNREFUSED');
  assert.equal(failureCause({ status: 0, error: 'UND_ERR_SOCKET', body: '' }),
    'connection:UND_ERR_SOCKET');
  assert.equal(failureCause({ status: 503, error: '',
    body: '{"error":{"code":"queue_timeout","message":"x"}}' }), '503:queue_timeout');
  assert.equal(failureCause({ status: 502, error: '', body: '<html>Bad Gateway</html>' }), '502:-');
  // A code from another process is validated before it becomes a key.
  assert.equal(failureCause({ status: 500, error: '', body: '{"error":{"code":"<b>"}}' }), '500:-');
  const byKind = causes([req(0, 503, { body: '{"error":{"code":"queue_full"}}' }),
    req(1, 0, { kind: 'cold', error: 'ECONNRESET' }), req(2), req(3, 0, { error: 'ETIMEDOUT' })]);
  assert.deepEqual(byKind, { warm: { '503:queue_full': 1, timeout: 1 },
    cold: { 'connection:ECONNRESET': 1 } });
});

test('buckets by send time: a late failure counts where it was sent', () => {
  const records = [req(10), req(240, 0, { doneMs: 10_000, error: 'UND_ERR_HEADERS_TIMEOUT' }),
    req(250, 200, { doneMs: 400 }), req(499, 502, { kind: 'cold' }), req(760)];
  const b = bucketize(records, 250);
  assert.deepEqual(b.map((x) => [x.startMs, x.ok, x.failed, x.warmFailed, x.coldFailed]),
    [[0, 1, 1, 1, 0], [250, 1, 1, 0, 1], [500, 0, 0, 0, 0], [750, 1, 0, 0, 0]]);
  assert.equal(b[1].warmLatencyMaxMs, 150, 'latency of successes only');
  assert.equal(b[1].coldLatencyMaxMs, 0);
});

test('recovery: first send after the last failure that starts a quiet stretch', () => {
  // Failures at 1000..1300 and an isolated one at 1700: quiet from 1800 on.
  const r = steady(5000, (t) => (t >= 1000 && t <= 1300) || t === 1700);
  assert.equal(recoveryMs(r, killMs, 2000), 800);
  assert.equal(failedInFlightAtKill(r, killMs), 0);
});

test('recovery: 0 when nothing after the kill failed; null when never quiet long enough', () => {
  assert.equal(recoveryMs(steady(4000, () => false), killMs, 2000), 0);
  assert.equal(recoveryMs(steady(4000, (t) => t >= 1000), killMs, 2000), null, 'never recovered');
  assert.equal(recoveryMs(steady(2500, (t) => t === 1000), killMs, 2000), null,
    'recovered at 1100 but the run ends before 2 s of quiet');
  assert.equal(recoveryMs(steady(3100, (t) => t === 1000), killMs, 2000), 100);
});

test('recovery per kind ignores the other kind', () => {
  const r = [...steady(4000, () => false), req(1500, 503, { kind: 'cold' }),
    req(1600, 200, { kind: 'cold' }), req(3700, 200, { kind: 'cold' })];
  assert.equal(recoveryMs(r, killMs, 2000, 'warm'), 0);
  assert.equal(recoveryMs(r, killMs, 2000, 'cold'), 600);
  assert.equal(recoveryMs(r, killMs, 2000), 600);
});

test('in flight at the kill: sent before, finished after, failed', () => {
  const r = [req(900, 0, { doneMs: 1001, error: 'ECONNRESET' }), req(950, 200, { doneMs: 1200 }),
    req(800, 503, { doneMs: 900 })];
  assert.equal(failedInFlightAtKill(r, killMs), 1);
});

test('first cold start after the kill: sent after it, measured to its completion', () => {
  const r = [req(990, 200, { kind: 'cold', doneMs: 1010 }),
    req(1100, 503, { kind: 'cold', doneMs: 1150 }),
    req(1200, 200, { kind: 'cold', doneMs: 2500 }), req(1400, 200, { kind: 'cold', doneMs: 2400 }),
    req(1050, 200, { doneMs: 1060 })];
  assert.equal(firstColdOkAfterMs(r, killMs), 1400);
  assert.equal(firstColdOkAfterMs(r.slice(0, 2), killMs), null);
});

test('warm functions served again: per function, queued requests count when they succeed', () => {
  const r = [req(1000, 200, { fn: 0, doneMs: 2300 }), req(1100, 200, { fn: 0, doneMs: 1400 }),
    req(1000, 200, { fn: 1, doneMs: 1010 }), req(1000, 503, { fn: 2 }),
    req(900, 200, { fn: 2, doneMs: 1500 }), req(1000, 200, { fn: 3, doneMs: 1600 })];
  assert.deepEqual(warmServedAgain(r, killMs), { maxMs: 600, medianMs: 400, never: [2] });
});

function poll(atMs: number, id: string, role: HealthPoll['role'], term: number): HealthPoll {
  return { atMs, target: id, role, term, id, pid: role === 'down' ? 0 : 7 };
}

test('new leader: another CP, or the same id with a higher term, answering as leader', () => {
  const polls = [poll(900, 'cp-1', 'leader', 3), poll(900, 'cp-0', 'standby', 3),
    poll(1100, 'cp-1', 'down', 0), poll(1900, 'cp-1', 'leader', 3),
    poll(2300, 'cp-0', 'leader', 4)];
  const old = leaderBefore(polls, killMs);
  assert.equal(old?.id, 'cp-1');
  assert.equal(newLeaderMs(polls, killMs, old), 1300, 'a stale cp-1 term-3 answer is not new');
  assert.equal(newLeaderMs([...polls, poll(1500, 'cp-1', 'leader', 4)], killMs, old), 500);
  assert.equal(newLeaderMs(polls.slice(0, 3), killMs, old), null);
});

test('plan: warm round-robin and one fresh function per cold send, merged by time', () => {
  const p = failoverPlan(4, 2, 1, 3);
  assert.deepEqual([...p.scheduleMs], [0, 0, 250, 500, 500, 750]);
  assert.deepEqual(p.kind.filter((k) => k === 'cold').length, 2);
  assert.deepEqual(p.fn.filter((_, i) => p.kind[i] === 'warm'), [0, 1, 2, 0]);
  assert.deepEqual(p.fn.filter((_, i) => p.kind[i] === 'cold'), [0, 1]);
  assert.equal(p.coldFunctions, 2);
  assert.equal(failoverPlan(10, 0, 3, 1).coldFunctions, 0);
  assert.equal(failoverPlan(0.1, 0, 30, 1).scheduleMs.length, 3, 'no float excess send');
});
