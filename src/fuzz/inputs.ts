/**
 * @module fuzz/inputs
 * Seeded generators of hostile input for the live fuzzer: management calls, invocations and raw
 * bytes. Every input is plain data (printable as JSON) so a failure can be shown and replayed
 * from `--seed`; sizes are bounded so the fuzzer tests the cluster, not the loopback.
 */
import fc from 'fast-check';

/** Largest generated body: past the API's 1 MiB limit so the 413 path is hit, but bounded. */
export const fuzzBodyBytesMax = 1_200_000;
/** Deepest generated JSON nesting: well past the API's refusal depth. */
export const fuzzNestingDepthMax = 5_000;
/** Raw bytes sent on one connection at most. */
export const rawBytesMax = 64 * 1024;

export interface HttpInput {
  kind: 'management' | 'invocation';
  method: string;
  path: string;
  headers: Record<string, string>;
  /** Body text; a repeated fragment is written as { repeat, times } to keep prints short. */
  body: string | { repeat: string; times: number } | null;
}

export interface RawInput {
  kind: 'raw';
  target: 'api' | 'proxy' | 'internal';
  /** Chunks written one after another with `gapMs` between them (slowloris-ish). */
  chunks: string[];
  gapMs: number;
  /** Close our side after writing (a truncated request) or wait for the answer. */
  endAfterWrite: boolean;
}

export type FuzzInput = HttpInput | RawInput;

export function bodyText(body: HttpInput['body']): string | undefined {
  if (body === null) return undefined;
  return typeof body === 'string' ? body : body.repeat.repeat(body.times);
}

const names = (fns: readonly string[]): fc.Arbitrary<string> =>
  fc.oneof(fc.constantFrom(...fns, 'fz-a', 'fz-b', 'fz-c'), fc.string({ maxLength: 70 }));

const oddNumber = fc.constantFrom(-1, 0, -0, 1e308, 2 ** 53, 0.5, 65_536, 4_294_967_296);
const oddValue = fc.oneof(fc.jsonValue({ maxDepth: 2 }), oddNumber);

function specBody(fns: readonly string[]): fc.Arbitrary<Record<string, unknown>> {
  return fc.record({
    name: names(fns),
    image: fc.oneof(fc.constant('emulated'), fc.string({ maxLength: 40 }), oddValue),
    command: fc.oneof(fc.constant(['node', 'server.js']), fc.array(fc.string({ maxLength: 10 }), { maxLength: 3 }), oddValue),
    port: fc.oneof(fc.integer({ min: -1, max: 70_000 }), oddValue),
    env: fc.oneof(fc.dictionary(fc.string({ maxLength: 10 }), fc.string({ maxLength: 20 }), { maxKeys: 3 }), oddValue),
    concurrency: fc.oneof(fc.integer({ min: -1, max: 2000 }), oddValue),
    timeoutMs: fc.oneof(fc.integer({ min: -1, max: 10_000 }), oddValue),
    scalingPreset: fc.oneof(fc.constantFrom('dirigent', 'sweep', 'knative', 'x'), oddValue),
    scaling: fc.oneof(fc.record({ min: fc.integer({ min: -1, max: 3 }), max: fc.integer({ min: -1, max: 5 }) }, { requiredKeys: [] }), oddValue),
    resources: fc.oneof(fc.record({ cpuMillis: oddValue, memoryMiB: oddValue }, { requiredKeys: [] }), oddValue),
  }, { requiredKeys: [] });
}

function formBody(fns: readonly string[]): fc.Arbitrary<string> {
  const key = fc.constantFrom('name', 'image', 'port_forwarding', 'requested_cpu', 'requested_memory',
    'scaling_upper_bound', 'scaling_lower_bound', 'cold_start_sweep', 'bogus');
  const value = fc.oneof(names(fns), fc.constantFrom('emulated', '80', 'tcp', '-1', '1e9', 'NaN', ''), fc.string({ maxLength: 20 }));
  return fc.array(fc.tuple(key, value), { maxLength: 9 }).map((pairs) => new URLSearchParams(pairs).toString());
}

function body(fns: readonly string[]): fc.Arbitrary<HttpInput['body']> {
  return fc.oneof(
    { weight: 1, arbitrary: fc.constant(null) },
    { weight: 4, arbitrary: specBody(fns).map((b) => JSON.stringify(b)) },
    { weight: 2, arbitrary: formBody(fns) },
    { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)) },
    { weight: 2, arbitrary: fc.string({ maxLength: 200 }) },
    { weight: 1, arbitrary: fc.constantFrom('[', '{', '[[', '{"a":').chain((open) =>
      fc.integer({ min: 1, max: fuzzNestingDepthMax }).map((times) => ({ repeat: open, times }))) },
    { weight: 1, arbitrary: fc.integer({ min: 1, max: fuzzBodyBytesMax }).map((times) => ({ repeat: 'x', times })) },
  );
}

const contentType = fc.constantFrom('application/json', 'application/json; charset=utf-8', 'application/x-www-form-urlencoded',
  'text/plain', 'multipart/form-data; boundary=x', '', 'application/json; charset=latin1', 'Application/JSON');
const method = fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'TRACE', 'post');

function managementPath(fns: readonly string[]): fc.Arbitrary<string> {
  return fc.oneof(
    fc.constantFrom('/', '/registerService', '/v1/functions', '/v1/cluster', '/health', '/health/leader', '/metrics',
      '/v1/functions/', '/v1/functions/%ZZ', '/v1/functions/%00', '/v1/functions/a/b', '//v1/functions', '/v1/functions?x=1',
      '/v1/functions/..%2F..', '/v1/functions/' + 'a'.repeat(5000), '/v1/../v1/functions', '*',
      '/v1/tokens', '/v1/tokens/0123456789ab', '/v1/tokens/%ZZ', '/v1/tokens/bootstrap', '/v1/namespaces', '/v1/namespaces/default',
      '/v1/namespaces/team-a', '/v1/namespaces/%00', '/v1/namespaces/A.b', '/v1/functions/fz-a.team-a', '/v1/functions/fz-a.%00',
      '/v1/functions?namespace=team-a', '/v1/functions?namespace=%ZZ', '/v1/functions/fz-a?namespace=..'),
    names(fns).map((n) => `/v1/functions/${encodeURIComponent(n)}`),
    fc.string({ maxLength: 60 }).map((s) => `/${encodeURI(s)}`),
  );
}

/** Valid calls on a few names, so functions come and go and invocations reach sandboxes. */
function lifecycleInput(fns: readonly string[]): fc.Arbitrary<HttpInput> {
  const name = fc.constantFrom(...fns, 'fz-a', 'fz-b');
  const headers = { 'content-type': 'application/json' };
  const spec = fc.record({
    image: fc.constant('emulated'),
    concurrency: fc.integer({ min: 0, max: 4 }),
    scaling: fc.record({ min: fc.integer({ min: 0, max: 2 }), max: fc.integer({ min: 2, max: 4 }) }),
  });
  return fc.oneof(
    fc.tuple(name, spec).map(([n, b]): HttpInput => ({ kind: 'management', method: 'POST', path: '/v1/functions', headers, body: JSON.stringify({ name: n, ...b }) })),
    fc.tuple(name, spec).map(([n, b]): HttpInput => ({ kind: 'management', method: 'PATCH', path: `/v1/functions/${n}`, headers, body: JSON.stringify(b) })),
    name.map((n): HttpInput => ({ kind: 'management', method: 'DELETE', path: `/v1/functions/${n}`, headers: {}, body: null })),
    fc.tuple(fc.constantFrom('admin', 'deploy', 'invoke', 'read', 'root', ''), fc.constantFrom('team-a', 'default', '', 'A.B')).map(([scope, namespace]): HttpInput =>
      ({ kind: 'management', method: 'POST', path: '/v1/tokens', headers, body: JSON.stringify({ scope, namespace }) })),
    fc.record({ functions: fc.integer({ min: -1, max: 3 }), sandboxes: fc.integer({ min: 0, max: 3 }), cpuMillis: fc.constantFrom(0, 50, 1e12) }).map((quotas): HttpInput =>
      ({ kind: 'management', method: 'PUT', path: '/v1/namespaces/team-a', headers, body: JSON.stringify({ quotas }) })),
    fc.tuple(name, spec).map(([n, b]): HttpInput =>
      ({ kind: 'management', method: 'POST', path: '/v1/functions', headers, body: JSON.stringify({ name: n, namespace: 'team-a', ...b }) })),
  );
}

export function managementInput(fns: readonly string[]): fc.Arbitrary<HttpInput> {
  return fc.oneof({ weight: 1, arbitrary: lifecycleInput(fns) }, { weight: 4, arbitrary: hostileManagementInput(fns) });
}

function hostileManagementInput(fns: readonly string[]): fc.Arbitrary<HttpInput> {
  return fc.record({
    kind: fc.constant('management' as const),
    method,
    path: managementPath(fns),
    headers: fc.record({ 'content-type': contentType }, { requiredKeys: [] }),
    body: body(fns),
  }).map((i) => (i.method === 'GET' || i.method === 'HEAD' ? { ...i, body: null } : i));
}

export function invocationInput(fns: readonly string[]): fc.Arbitrary<HttpInput> {
  // (No Expect header: undici will not send one; raw inputs carry it.)
  const headerName = fc.constantFrom('x-emulated-duration-ms', 'x-dirigent-sandbox', 'content-type', 'x-forwarded-for', 'x-a');
  const headerValue = fc.oneof(fc.constantFrom('0', '-1', '1e9', 'NaN', '50', '100-continue', ''), fc.string({ maxLength: 30 }).map((s) => s.replace(/[^\x20-\x7e]/g, '')));
  return fc.record({
    kind: fc.constant('invocation' as const),
    method,
    path: fc.oneof(fc.constantFrom('/', '/a/b?c=d', '//', '/%ZZ', '*'), fc.string({ maxLength: 60 }).map((s) => `/${encodeURI(s)}`)),
    headers: fc.tuple(fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...fns, 'fz-a', 'fz-b') }, { weight: 1, arbitrary: names(fns) },
      { weight: 1, arbitrary: fc.constantFrom('', 'a:1', '[::1]', 'x'.repeat(300)) }), fc.dictionary(headerName, headerValue, { maxKeys: 3 }))
      .map(([host, extra]): Record<string, string> => ({ ...extra, host })),
    body: fc.oneof(fc.constant(null), fc.string({ maxLength: 200 }), fc.integer({ min: 1, max: 200_000 }).map((times) => ({ repeat: 'y', times }))),
  }).map((i) => (i.method === 'GET' || i.method === 'HEAD' ? { ...i, body: null } : i))
    .map((i) => {
      // A duration header over a second would only measure our own patience.
      const d = Number(i.headers['x-emulated-duration-ms']);
      if (Number.isFinite(d) && d > 1000) i.headers['x-emulated-duration-ms'] = '1000';
      return i;
    });
}

function rawRequestText(fns: readonly string[]): fc.Arbitrary<string> {
  const line = fc.tuple(fc.constantFrom('GET', 'POST', 'PUT', 'G\0T', ''), fc.constantFrom('/', '/v1/functions', '/registerService', '*', ''),
    fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/9', 'http/1.1', ''));
  const header = fc.oneof(
    fc.constantFrom('Host: x', 'Content-Length: 10', 'Content-Length: -1', 'Content-Length: 99999999999', 'Transfer-Encoding: chunked',
      'Transfer-Encoding: chunked, identity', 'Content-Length: 5\r\nContent-Length: 6', 'Expect: 100-continue', ': empty', 'NoColon',
      'X: ' + 'v'.repeat(20_000), 'Connection: upgrade\r\nUpgrade: h2c'),
    names(fns).map((n) => `Host: ${n}`),
    fc.string({ maxLength: 40 }),
  );
  const bodyPart = fc.oneof(fc.constantFrom('', '5\r\nhello\r\n0\r\n\r\n', 'zz\r\n', '{"name":"fz-a","image":"emulated"}'), fc.string({ maxLength: 100 }));
  return fc.tuple(line, fc.array(header, { maxLength: 5 }), fc.constantFrom('\r\n', '\n', ''), bodyPart)
    .map(([[m, p, v], hs, end, b]) => `${m} ${p} ${v}\r\n${hs.map((h) => `${h}\r\n`).join('')}${end}${b}`);
}

export function rawInput(fns: readonly string[]): fc.Arbitrary<RawInput> {
  const text = fc.oneof(
    { weight: 3, arbitrary: rawRequestText(fns) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 2000 }).map((b) => Buffer.from(b).toString('latin1')) },
  );
  return fc.record({
    kind: fc.constant('raw' as const),
    target: fc.constantFrom('api' as const, 'proxy' as const, 'internal' as const),
    text,
    pieces: fc.integer({ min: 1, max: 8 }),
    gapMs: fc.constantFrom(0, 0, 10, 100, 300),
    endAfterWrite: fc.boolean(),
  }).map(({ text: t, pieces, ...rest }) => ({ ...rest, chunks: split(t.slice(0, rawBytesMax), pieces) }));
}

function split(s: string, pieces: number): string[] {
  const size = Math.max(1, Math.ceil(s.length / pieces));
  const out: string[] = [];
  for (let i = 0; i < s.length; i += size) out.push(s.slice(i, i + size));
  return out.length > 0 ? out : [''];
}

/** Any input, weighted towards management calls (the part with checked answers). */
export function anyInput(fns: readonly string[]): fc.Arbitrary<FuzzInput> {
  return fc.oneof(
    { weight: 5, arbitrary: managementInput(fns) },
    { weight: 3, arbitrary: invocationInput(fns) },
    { weight: 2, arbitrary: rawInput(fns) },
  );
}
