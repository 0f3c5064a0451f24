import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { haproxyConfig, noTls, parseHostPort, planSlots, type FrontendLayout } from './config.js';

const layout: FrontendLayout = {
  bindHost: '127.0.0.1',
  invocationPort: 8079,
  apiPort: 9092,
  dataPlanes: [{ host: '127.0.0.1', port: 8080 }, { host: '127.0.0.1', port: 8180 }],
  controlPlanes: [{ host: '127.0.0.1', port: 9091 }, { host: '127.0.0.1', port: 9191 }],
  slots: 4,
  apiHealthPath: '/health/leader',
  statsSocketPath: '/state/frontend/haproxy.sock',
  tls: noTls,
};

function lines(cfg: string): string[] {
  return cfg.split('\n').map((l) => l.trim());
}

describe('haproxyConfig', () => {
  it('hashes invocations by Host onto consistent slots, idle ones disabled', () => {
    const l = lines(haproxyConfig(layout));
    assert.ok(l.includes('bind 127.0.0.1:8079'));
    assert.ok(l.includes('balance hdr(host)'));
    assert.ok(l.includes('hash-type consistent'));
    assert.ok(l.includes('server dp1 127.0.0.1:8080 check'));
    assert.ok(l.includes('server dp2 127.0.0.1:8180 check'));
    assert.ok(l.includes('server dp3 127.0.0.1:1 check disabled'));
    assert.ok(l.includes('server dp4 127.0.0.1:1 check disabled'));
  });

  it('sends invocations only to DPs that have their routing table (readiness check the DP answers itself)', () => {
    const l = lines(haproxyConfig(layout));
    assert.ok(l.includes('option httpchk'));
    assert.ok(l.includes('http-check send meth GET uri / hdr x-dirigent-ready-check 1'));
  });

  it('routes the API to the leader by its health check', () => {
    const l = lines(haproxyConfig(layout));
    assert.ok(l.includes('bind 127.0.0.1:9092'));
    assert.ok(l.includes('option httpchk GET /health/leader'));
    assert.ok(l.includes('http-check expect status 200'));
    assert.ok(l.includes('server cp0 127.0.0.1:9091 check'));
    assert.ok(l.includes('server cp1 127.0.0.1:9191 check'));
  });

  it('with TLS, serves both ports with the certificate and checks every backend against the CA', () => {
    const tls = { bindPemFile: '/state/frontend/tls.pem', backendCaFile: '/state/tls/ca.pem' };
    const l = lines(haproxyConfig({ ...layout, tls }));
    assert.ok(l.includes('bind 127.0.0.1:8079 ssl crt /state/frontend/tls.pem alpn h2,http/1.1'));
    assert.ok(l.includes('bind 127.0.0.1:9092 ssl crt /state/frontend/tls.pem alpn h2,http/1.1'));
    const backendTls = 'ssl verify required ca-file /state/tls/ca.pem';
    assert.ok(l.includes(`server dp1 127.0.0.1:8080 check ${backendTls}`));
    // A slot filled later through the runtime API keeps its TLS settings.
    assert.ok(l.includes(`server dp4 127.0.0.1:1 check ${backendTls} disabled`));
    assert.ok(l.includes(`server cp1 127.0.0.1:9191 check ${backendTls}`));
    // Each half on its own: TLS toward clients only, or toward the backends only.
    const front = lines(haproxyConfig({ ...layout, tls: { ...tls, backendCaFile: null } }));
    assert.ok(front.includes('server dp1 127.0.0.1:8080 check') && front.some((x) => x.startsWith('bind 127.0.0.1:8079 ssl')));
    const back = lines(haproxyConfig({ ...layout, tls: { ...tls, bindPemFile: null } }));
    assert.ok(back.includes('bind 127.0.0.1:8079') && back.includes(`server cp0 127.0.0.1:9091 check ${backendTls}`));
  });

  it('checks fast, retries connection failures on another server, has a runtime socket', () => {
    const l = lines(haproxyConfig(layout));
    assert.ok(l.includes('default-server inter 200ms fall 2 rise 1'));
    assert.ok(l.includes('option redispatch'));
    assert.ok(l.includes('retry-on conn-failure empty-response'));
    assert.ok(l.some((x) => /^retries \d+$/.test(x)));
    assert.ok(l.includes('stats socket /state/frontend/haproxy.sock mode 600 level admin'));
  });

  it('refuses fewer slots than data planes', () => {
    assert.throws(() => haproxyConfig({ ...layout, slots: 1 }), /slots/);
  });
});

describe('planSlots', () => {
  it('fills the lowest idle slot and enables it', () => {
    const p = planSlots(['127.0.0.1:8080', null, null], ['127.0.0.1:8080', '127.0.0.1:8180']);
    assert.deepEqual(p.slots, ['127.0.0.1:8080', '127.0.0.1:8180', null]);
    assert.deepEqual(p.commands, [
      'set server dataplanes/dp2 addr 127.0.0.1 port 8180',
      'set server dataplanes/dp2 state ready',
    ]);
    assert.deepEqual(p.unplaced, []);
  });

  it('puts a departed DP in maintenance and keeps the others in their slots', () => {
    const p = planSlots(['a:1', 'b:2', 'c:3'].map((k) => k.replace(/^[a-c]/, '127.0.0.1')), ['127.0.0.1:1', '127.0.0.1:3']);
    assert.deepEqual(p.slots, ['127.0.0.1:1', null, '127.0.0.1:3']);
    assert.deepEqual(p.commands, ['set server dataplanes/dp2 state maint']);
  });

  it('does nothing when the set is unchanged', () => {
    const p = planSlots(['127.0.0.1:1', null], ['127.0.0.1:1']);
    assert.deepEqual(p.commands, []);
  });

  it('reports DPs that find no slot or have a bad address', () => {
    const p = planSlots(['127.0.0.1:1'], ['127.0.0.1:1', '127.0.0.1:2', 'bad']);
    assert.deepEqual(p.unplaced.sort(), ['127.0.0.1:2', 'bad']);
  });
});

describe('parseHostPort', () => {
  it('accepts host:port and rejects junk', () => {
    assert.deepEqual(parseHostPort('10.0.0.1:8080'), { host: '10.0.0.1', port: 8080 });
    assert.equal(parseHostPort('x'), null);
    assert.equal(parseHostPort('h:0'), null);
    assert.equal(parseHostPort('h:70000'), null);
  });
});
