/**
 * @module loadgen/shell/bench-async
 * `dirigent bench async`: open-loop async submits (`Prefer: respond-async`) to one existing
 * function at a fixed rate. Each submit names a callback URL on a small server of ours, so
 * completions arrive without polling the DP (polling would cost the DP the CPU we measure).
 * A warm-up at the same rate goes first, unmeasured (as the warm bench's). CPU is sampled from
 * the cluster's /proc stat (cluster.json) from the first measured send until every accepted
 * invocation completed or the drain time ran out.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AsyncBenchRecorder, type AsyncBenchSummary } from '../core/async-bench.js';
import { fixedRateScheduleMs, sendCount } from '../core/schedule.js';
import { startCpuSampler } from './cpu.js';
import { loopDelayFields } from './loop-delay.js';
import { call, createSenderPool } from './http-sender.js';
import { BenchSetupError } from './lifecycle.js';
import { runOpenLoop } from './pacer.js';

export const asyncBenchDefaults = Object.freeze({
  connections: 256,
  timeoutMs: 10_000,
  /** How long to wait for outstanding completions after the last send. */
  drainS: 60,
  bodyBytes: 64,
  /** Seconds of submits at the same rate before the measured ones (JIT, pools, the first sandboxes). */
  warmupS: 2,
});
/** How often the drain checks whether every accepted invocation completed. */
const drainPollMs = 50;
/** Bytes of a callback body read to find the function's status. */
const callbackBodyBytesMax = 1_048_576;

export interface AsyncBenchOptions {
  proxyUrl: string;
  stateDir: string;
  functionName: string;
  rateRps: number;
  durationS: number;
  /** Seconds of unmeasured submits at the same rate first; their callbacks are not counted. */
  warmupS: number;
  connections: number;
  timeoutMs: number;
  drainS: number;
  bodyBytes: number;
}

export async function runAsyncBench(o: AsyncBenchOptions): Promise<AsyncBenchSummary> {
  const recorder = new AsyncBenchRecorder();
  const callbacks = await startCallbackServer(recorder);
  const pool = createSenderPool({ origin: new URL(o.proxyUrl).origin, connections: o.connections, timeoutMs: o.timeoutMs });
  const body = Buffer.alloc(o.bodyBytes, 'x');
  const schedule = fixedRateScheduleMs(o.rateRps, sendCount(o.rateRps, o.durationS));
  const inflight: Promise<void>[] = [];
  try {
    await preflight(pool, o, body, `${callbacks.url}/cb/preflight`);
    if (o.warmupS > 0) {
      const warm: Promise<unknown>[] = [];
      await runOpenLoop(fixedRateScheduleMs(o.rateRps, sendCount(o.rateRps, o.warmupS)), (seq) => {
        warm.push(submit(pool, o, body, `${callbacks.url}/cb/w${seq}`));
      });
      await Promise.all(warm);
    }
    const cpu = await startCpuSampler(o.stateDir);
    await runOpenLoop(schedule, (seq, nowMs) => {
      recorder.onSend(seq, nowMs);
      inflight.push(submit(pool, o, body, `${callbacks.url}/cb/${seq}`).then((answer) => {
        recorder.onAnswer(seq, answer.status, answer.error, answer.hasId, performance.now());
      }));
    });
    await Promise.all(inflight);
    const drainUntilMs = performance.now() + o.drainS * 1000;
    while (!recorder.allCompleted() && performance.now() < drainUntilMs) {
      await new Promise((resolve) => setTimeout(resolve, drainPollMs));
    }
    const sample = await cpu.finish();
    return { ...recorder.summarize(o.rateRps, o.durationS, sample.cpu, sample.note), warmupS: o.warmupS, ...loopDelayFields(sample.loopDelay) };
  } finally {
    await pool.close();
    await callbacks.close();
  }
}

async function submit(pool: ReturnType<typeof createSenderPool>, o: AsyncBenchOptions, body: Buffer, callbackUrl: string) {
  const reply = await call(pool, {
    path: '/',
    method: 'POST',
    headers: ['host', o.functionName, 'prefer', 'respond-async', 'x-callback-url', callbackUrl, 'content-type', 'text/plain'],
    body,
  });
  return { status: reply.status, error: reply.error, hasId: hasId(reply.text) };
}

/**
 * One submit before the measured run, so a setup the whole run would fail on (the DP refuses
 * loopback callbacks, no such function, auth) is named instead of reported as N errors.
 */
async function preflight(pool: ReturnType<typeof createSenderPool>, o: AsyncBenchOptions, body: Buffer, callbackUrl: string): Promise<void> {
  const reply = await call(pool, {
    path: '/', method: 'POST', body,
    headers: ['host', o.functionName, 'prefer', 'respond-async', 'x-callback-url', callbackUrl, 'content-type', 'text/plain'],
  });
  if (reply.status === 202) return;
  const hint = reply.text.includes('invalid_callback_url')
    ? ': the data plane refuses callbacks to this machine; start it with --async-callback-allow-private true (dirigent up does)'
    : '';
  throw new BenchSetupError(`an async submit to ${o.functionName} got ${reply.status || reply.error} ${reply.text.slice(0, 300)}${hint}`);
}

function hasId(text: string): boolean {
  try {
    const id = (JSON.parse(text) as { id?: unknown }).id;
    return typeof id === 'string' && id !== '';
  } catch {
    return false;
  }
}

interface CallbackServer {
  url: string;
  close(): Promise<void>;
}

/** Takes `POST /cb/<seq>` callbacks; the function's status comes from the JSON body when it says. */
async function startCallbackServer(recorder: AsyncBenchRecorder): Promise<CallbackServer> {
  const server: Server = createServer((req, res) => {
    void readCallback(req).then((status) => {
      const seq = Number(/^\/cb\/(\d+)$/.exec(req.url ?? '')?.[1] ?? Number.NaN);
      if (Number.isInteger(seq)) recorder.onCompleted(seq, status, performance.now());
      res.writeHead(200);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** The function's status: `statusCode` or `result.statusCode` of a JSON body, else 200. */
async function readCallback(req: IncomingMessage): Promise<number> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  try {
    for await (const chunk of req) {
      bytes += (chunk as Buffer).length;
      if (bytes <= callbackBodyBytesMax) chunks.push(chunk as Buffer);
    }
    const json = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { statusCode?: unknown; result?: { statusCode?: unknown } };
    const status = json.result?.statusCode ?? json.statusCode;
    return typeof status === 'number' ? status : 200;
  } catch {
    return 200;
  }
}
