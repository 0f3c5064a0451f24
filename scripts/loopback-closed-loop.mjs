// Shared by scripts/upstream-bench.mjs and scripts/sender-bench.mjs: a stand-in HTTP server in a
// child process (each request head gets the emulated responder's answer: a keep-alive head and a
// 48-byte JSON body), and a closed loop of requests measured in rounds: the CPU of this process
// per call (user + system, and user alone) and calls per second, medians of the rounds.
import { fork } from 'node:child_process';
import { createServer } from 'node:net';

export const standInFlag = '--stand-in';

/** Runs the stand-in (in the child): listens on 127.0.0.1 and sends its port to the parent. */
export function runStandIn() {
  const body = '{"sandbox":"sb-0123456789abcdef","durationMs":0}';
  const answer = Buffer.from(
    'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n' +
      `content-length: ${body.length}\r\nconnection: keep-alive\r\nkeep-alive: timeout=5\r\n\r\n${body}`,
    'latin1',
  );
  const server = createServer((c) => {
    c.setNoDelay(true);
    c.on('error', () => {}); // the parent going away resets its connections
    c.on('data', (d) => {
      // One answer per request head in the read (the benches send GETs without bodies).
      for (let i = d.indexOf('\r\n\r\n'); i >= 0; i = d.indexOf('\r\n\r\n', i + 4)) c.write(answer);
    });
  });
  server.listen(0, '127.0.0.1', () => process.send(server.address().port));
}

/** Forks `scriptPath` as the stand-in; resolves with the child and its port. */
export async function forkStandIn(scriptPath) {
  const child = fork(scriptPath, [standInFlag], { stdio: 'inherit' });
  const port = await new Promise((resolve) => child.once('message', resolve));
  return { child, port };
}

/**
 * `start()` puts the requests in flight; `calls()` counts the successes so far. Seven rounds of
 * 3 s after a 2 s warm-up; returns the medians and every round's figures.
 */
export async function measureRounds(start, calls, { rounds = 7, roundMs = 3_000, warmupMs = 2_000 } = {}) {
  start();
  await new Promise((r) => setTimeout(r, warmupMs));
  const perCallUs = [];
  const userPerCallUs = [];
  const perSecond = [];
  for (let r = 0; r < rounds; r++) {
    const cpu0 = process.cpuUsage();
    const calls0 = calls();
    const t0 = performance.now();
    await new Promise((resolve) => setTimeout(resolve, roundMs));
    const cpu = process.cpuUsage(cpu0);
    const n = calls() - calls0;
    perCallUs.push((cpu.user + cpu.system) / n);
    userPerCallUs.push(cpu.user / n);
    perSecond.push((n / (performance.now() - t0)) * 1000);
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  return {
    text: `${median(perCallUs).toFixed(2)} us of CPU per call, ${median(userPerCallUs).toFixed(2)} of it in user space (medians of ${rounds}; all, total/user: ${perCallUs.map((x, i) => `${x.toFixed(1)}/${userPerCallUs[i].toFixed(1)}`).join(' ')}), ${Math.round(median(perSecond))} calls/s`,
  };
}
