/**
 * Goal: the fuzzer's judgements are right (a 5xx, a 3xx or a non-JSON management answer fails;
 * the form routes' text answers, 204 and HEAD pass; RSS past the cap or past 4x its start fails)
 * and its input stream is a pure function of the seed, so a printed failure replays.
 * Method: direct calls with table inputs; no cluster.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { checkManagementReply, checkRss, rssBytesMax, rssGrowthFloorBytes } from './checks.js';
import { InputStream, seedFunctions } from './run.js';
import { anyInput } from './inputs.js';

const json = 'application/json';

describe('fuzz checks', () => {
  test('management replies: 2xx/4xx with a JSON body pass, anything else fails', () => {
    assert.equal(checkManagementReply('GET', '/v1/functions', { status: 200, contentType: json, text: '{"functions":[]}' }), null);
    assert.equal(checkManagementReply('POST', '/v1/functions', { status: 400, contentType: `${json}; charset=utf-8`, text: '{}' }), null);
    assert.match(checkManagementReply('POST', '/v1/functions', { status: 500, contentType: json, text: '{}' }) ?? '', /status 500/);
    assert.match(checkManagementReply('GET', '/x', { status: 302, contentType: json, text: '{}' }) ?? '', /status 302/);
    assert.match(checkManagementReply('GET', '/x', { status: 400, contentType: '', text: '' }) ?? '', /not JSON/);
    assert.match(checkManagementReply('GET', '/x', { status: 404, contentType: json, text: 'oops' }) ?? '', /not JSON/);
  });

  test('documented non-JSON answers pass: form routes 200/409, /metrics, 204, HEAD', () => {
    const text = { contentType: 'text/plain', text: 'x' };
    assert.equal(checkManagementReply('POST', '/registerService', { status: 200, ...text }), null);
    assert.equal(checkManagementReply('POST', '/', { status: 409, ...text }), null);
    assert.equal(checkManagementReply('GET', '/metrics', { status: 200, ...text }), null);
    assert.equal(checkManagementReply('DELETE', '/v1/functions/a', { status: 204, contentType: '', text: '' }), null);
    assert.equal(checkManagementReply('HEAD', '/v1/functions', { status: 405, contentType: json, text: '' }), null);
    assert.match(checkManagementReply('POST', '/registerService', { status: 400, ...text }) ?? '', /not JSON/);
  });

  test('RSS: past the cap or past 4x the start (above the floor) fails', () => {
    assert.equal(checkRss(60e6, 200e6), null);
    assert.match(checkRss(60e6, rssBytesMax + 1) ?? '', /over the limit/);
    assert.match(checkRss(60e6, rssGrowthFloorBytes + 1) ?? '', /grew/);
    assert.equal(checkRss(100e6, rssGrowthFloorBytes + 1), null);
  });

  test('the input stream is a function of the seed', () => {
    const a = new InputStream(42, anyInput(seedFunctions));
    const b = new InputStream(42, anyInput(seedFunctions));
    const c = new InputStream(43, anyInput(seedFunctions));
    // Out of order on one side: input i does not depend on what was drawn before.
    const fromB = [450, 3, 201].map((i) => JSON.stringify(b.at(i)));
    assert.deepEqual([450, 3, 201].map((i) => JSON.stringify(a.at(i))), fromB);
    assert.notDeepEqual([450, 3, 201].map((i) => JSON.stringify(c.at(i))), fromB);
  });
});
