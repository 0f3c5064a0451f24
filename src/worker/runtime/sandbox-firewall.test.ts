/**
 * The packet filter as data: table name per state dir, uid ranges, refusal of this host and of
 * the deny list, replace-on-load. Loading it for real is in process-isolation.test.ts.
 */
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { ConfigError } from '../../config/compile.js';
import { memoryLogger, type RecordedLog } from '../../shared/logger.js';
import { isolationUnusableReason, parseNameservers, resolveIsolation } from './isolation-setup.js';
import { firewallRuleset, firewallTableName } from './sandbox-firewall.js';

const ranges = { noEgress: [200_000, 209_999], egress: [210_000, 219_999] } as const;

describe('sandbox firewall ruleset', () => {
  test('one table per state dir, named by 12 hex of its hash', () => {
    assert.match(firewallTableName('/var/lib/dirigent/workers/w1'), /^dirigent_[0-9a-f]{12}$/);
    assert.notEqual(firewallTableName('/a'), firewallTableName('/b'));
    assert.equal(firewallTableName('/a/../b'), firewallTableName('/b'));
  });

  test('replaces a stale table atomically, then matches the two uid halves', () => {
    const rules = firewallRuleset('dirigent_abc', ranges, []).split('\n').map((l) => l.trim());
    assert.deepEqual(rules.slice(0, 3), ['table inet dirigent_abc', 'delete table inet dirigent_abc', 'table inet dirigent_abc {']);
    assert.ok(rules.includes('type filter hook output priority filter; policy accept;'));
    assert.ok(rules.includes('meta skuid 200000-209999 jump no_egress'));
    assert.ok(rules.includes('meta skuid 210000-219999 jump egress'));
  });

  test('no egress: replies pass, everything else is refused', () => {
    const text = firewallRuleset('t', ranges, ['10.0.0.0/8']);
    const chain = /chain no_egress \{\n([\s\S]*?)\n {2}\}/.exec(text)![1].trim().split('\n').map((l) => l.trim());
    assert.deepEqual(chain, ['ct state established,related accept', 'goto refuse']);
  });

  test('egress: replies pass; this host and the deny list (v4 and v6) are refused; the rest accepted', () => {
    const text = firewallRuleset('t', ranges, ['10.0.0.0/8', '169.254.0.0/16', 'fc00::/7']);
    const chain = /chain egress \{\n([\s\S]*?)\n {2}\}/.exec(text)![1].trim().split('\n').map((l) => l.trim());
    assert.deepEqual(chain, [
      'ct state established,related accept',
      'fib daddr type local goto refuse',
      'ip daddr { 10.0.0.0/8, 169.254.0.0/16 } goto refuse',
      'ip6 daddr { fc00::/7 } goto refuse',
      'accept',
    ]);
    assert.ok(!firewallRuleset('t', ranges, []).includes('ip daddr'), 'no empty set');
  });

  test('refusal is a reject (fast failure), never a drop', () => {
    const text = firewallRuleset('t', ranges, []);
    assert.ok(text.includes('meta l4proto tcp reject with tcp reset'));
    assert.ok(!text.includes('drop'));
  });

  test('isolation needs root', async () => {
    const reason = await isolationUnusableReason(1000);
    // On a host without the binaries that is named first; with them, root is what is missing.
    assert.match(reason ?? '', /not found \(apt-get install|needs root/);
  });

  test("isolation 'none' is honoured with a warning; an unknown value is a config error", async () => {
    const logs: RecordedLog[] = [];
    assert.equal(await resolveIsolation('none', memoryLogger(logs)), 'none');
    assert.deepEqual(logs.map((l) => [l.level, l.event]), [['warn', 'worker.unisolated']]);
    await assert.rejects(resolveIsolation('sometimes', memoryLogger([])), ConfigError);
  });

  test("isolation 'auto' is bwrap where usable, else none with a warning", async () => {
    const logs: RecordedLog[] = [];
    const usable = (await isolationUnusableReason()) === undefined;
    assert.equal(await resolveIsolation('auto', memoryLogger(logs)), usable ? 'bwrap' : 'none');
    assert.equal(logs.length, usable ? 0 : 1);
  });

  test('egress: DNS to the resolvers is allowed before this host and the deny list are refused', () => {
    const text = firewallRuleset('t', ranges, ['10.0.0.0/8'], ['10.0.0.2', 'fd00::53']);
    const chain = /chain egress \{\n([\s\S]*?)\n {2}\}/.exec(text)![1].trim().split('\n').map((l) => l.trim());
    assert.deepEqual(chain.slice(1, 6), [
      'ip daddr 10.0.0.2 udp dport 53 accept',
      'ip daddr 10.0.0.2 tcp dport 53 accept',
      'ip6 daddr fd00::53 udp dport 53 accept',
      'ip6 daddr fd00::53 tcp dport 53 accept',
      'fib daddr type local goto refuse',
    ]);
    assert.ok(!/chain no_egress[^}]*dport 53/.test(text), 'no DNS without egress');
  });

  test('nameservers come from resolv.conf lines, addresses only', () => {
    const conf = '# comment\nnameserver 10.0.0.2\nsearch example.org\nnameserver  fd00::53\nnameserver fe80::1%eth0\nnameserver dns.example\n';
    assert.deepEqual(parseNameservers(conf), ['10.0.0.2', 'fd00::53']);
  });
});
