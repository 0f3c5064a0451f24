/**
 * Sandbox ports against the kernel's ephemeral range: the /proc formats parse (and bad text is
 * refused, not guessed at), and the overlap counts exactly the ports an outgoing connection can
 * take. Method: examples, then a property against a port-by-port count over small ranges.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { memoryLogger, type RecordedLog } from '../../shared/logger.js';
import {
  ephemeralOverlap,
  parseEphemeralRange,
  parseReservedPorts,
  warnOnEphemeralOverlap,
  type PortRange,
} from './ephemeral-ports.js';

describe('ephemeral ports', () => {
  it('parses the two /proc files as the kernel writes them', () => {
    assert.deepEqual(parseEphemeralRange('32768\t60999\n'), [32_768, 60_999]);
    assert.deepEqual(parseReservedPorts('\n'), []);
    assert.deepEqual(parseReservedPorts('8080,20000-29999\n'), [[8080, 8080], [20_000, 29_999]]);
  });

  it('refuses text it cannot read instead of guessing', () => {
    for (const bad of ['', '32768', '60999 32768', '1 2 3', 'a b', '0 100', '1 65536']) {
      assert.equal(parseEphemeralRange(bad), undefined, JSON.stringify(bad));
    }
    for (const bad of ['x', '1-2-3', '5-4', '70000', '1,,2', '-5']) {
      assert.equal(parseReservedPorts(bad), undefined, JSON.stringify(bad));
    }
  });

  it('names the overlap of the sandbox range with the ephemeral range', () => {
    const kernel: PortRange = [32_768, 60_999];
    assert.equal(ephemeralOverlap([20_000, 29_999], kernel, []), undefined, 'the default range lies below');
    assert.deepEqual(ephemeralOverlap([33_000, 33_499], kernel, []), { overlap: [33_000, 33_499], unreservedPorts: 500 });
    assert.deepEqual(ephemeralOverlap([30_000, 40_000], kernel, []), { overlap: [32_768, 40_000], unreservedPorts: 7_233 });
  });

  it('does not count reserved ports, and is silent when all of the overlap is reserved', () => {
    const kernel: PortRange = [32_768, 60_999];
    assert.equal(ephemeralOverlap([33_000, 33_499], kernel, [[33_000, 33_499]]), undefined);
    assert.deepEqual(
      ephemeralOverlap([33_000, 33_499], kernel, [[33_100, 33_199], [33_150, 33_250], [40_000, 40_000]]),
      { overlap: [33_000, 33_499], unreservedPorts: 349 },
    );
  });

  it('counts the same ports as a port-by-port check (property)', () => {
    const range = fc.tuple(fc.integer({ min: 1, max: 200 }), fc.integer({ min: 0, max: 60 })).map(([a, n]): PortRange => [a, a + n]);
    fc.assert(fc.property(range, range, fc.array(range, { maxLength: 5 }), (sandbox, ephemeral, reserved) => {
      let expected = 0;
      for (let p = sandbox[0]; p <= sandbox[1]; p++) {
        const inEphemeral = p >= ephemeral[0] && p <= ephemeral[1];
        const isReserved = reserved.some(([a, b]) => p >= a && p <= b);
        if (inEphemeral && !isReserved) expected += 1;
      }
      const got = ephemeralOverlap(sandbox, ephemeral, reserved);
      assert.equal(got?.unreservedPorts ?? 0, expected);
      if (got !== undefined) {
        assert.deepEqual(got.overlap, [Math.max(sandbox[0], ephemeral[0]), Math.min(sandbox[1], ephemeral[1])]);
      }
    }));
  });

  it('warns once at start-up with the overlap and the sysctl that reserves it', () => {
    const logs: RecordedLog[] = [];
    const host = { ephemeral: [32_768, 60_999] as const, reserved: [] };
    assert.equal(warnOnEphemeralOverlap([20_000, 29_999], host, memoryLogger(logs)), false);
    assert.equal(warnOnEphemeralOverlap([33_000, 33_499], undefined, memoryLogger(logs)), false, 'no /proc: nothing to say');
    assert.equal(logs.length, 0);
    assert.equal(warnOnEphemeralOverlap([30_000, 33_000], host, memoryLogger(logs)), true);
    assert.equal(logs.length, 1);
    assert.equal(logs[0].level, 'warn');
    assert.equal(logs[0].event, 'worker.sandbox_ports_ephemeral');
    assert.equal(logs[0].fields?.overlap, '32768-33000');
    assert.equal(logs[0].fields?.unreservedPorts, 233);
    assert.match(String(logs[0].fields?.fix), /ip_local_reserved_ports=32768-33000/);
  });
});
