/**
 * @module cli/invoke
 * `dirigent fn invoke <name>`: one request to the data plane, routed by `Host: <name>` as every
 * Dirigent client does. The function's answer streams to stdout byte for byte (so it can be
 * piped); the status and the data plane's cold-start and queueing headers go to stderr.
 * A non-2xx answer exits 1 after the body is printed.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { STATUS_CODES } from 'node:http';
import { Option, type Command } from 'commander';
import { Header } from '../api/types.js';
import { cliDefaults } from '../config/defaults.js';
import { cliContext, CliError, usageError, type CliContext } from './context.js';
import { formatApiError, resolveProxyUrl, sendRaw, transportError, type RawReply } from './http.js';
import { collect, numberArg } from './fn-flags.js';
import { authHeader, cliAuth } from './token-source.js';

interface InvokeFlags {
  data?: string;
  dataFile?: string;
  method?: string;
  path: string;
  header?: string[];
  raw: boolean;
  proxy?: string;
  namespace?: string;
  requestTimeoutMs: number;
  async: boolean;
}

/** Bytes of a failed answer kept to word the error line; the rest only goes to stdout. */
const errorBodyBytesMax = 64 * 1024;

export function registerInvokeCommand(fn: Command): void {
  fn.command('invoke')
    .description('send one request to a function through the data plane')
    .argument('<name>', 'function name (sent as the Host header)')
    .addOption(new Option('--data <text>', 'request body').conflicts('dataFile'))
    .option('--data-file <path>', 'request body read from a file')
    .option('--method <M>', 'HTTP method (default: POST with a body, GET without)')
    .option('--path <p>', 'request path and query', '/')
    .option('--header <K:V>', 'extra request header (repeatable)', collect)
    .option('--raw', 'print the body byte for byte (no final newline added)', false)
    .option('--async', 'store the request and return at once: prints the invocation id (see `dirigent invocation get`)', false)
    .option('--namespace <ns>', 'namespace of the function (Host <name>.<ns>; default: default)')
    .option('--proxy <url>',
      `data-plane URL (env DIRIGENT_PROXY, default ${cliDefaults.proxyUrl})`)
    .option('--request-timeout-ms <ms>', 'give up after this long, including a cold start',
      numberArg, cliDefaults.requestTimeoutMs)
    .addHelpText('after', `
The body is printed to stdout; the status, whether the request waited for a cold start
(x-dirigent-cold-start) and how long it queued (x-dirigent-queue-ms) go to stderr.

Examples:
  $ dirigent fn invoke hello
  $ dirigent fn invoke hello --data 'world'
  $ dirigent fn invoke trace --header x-emulated-duration-ms:50 --data-file input.json
  $ dirigent fn invoke hello --method PUT --path '/items?id=3' --proxy http://127.0.0.1:8079
  $ dirigent fn invoke hello --data 'later' --async`)
    .action(async (name: string, flags: InvokeFlags, command: Command) => {
      const ctx = cliContext(command);
      const proxyUrl = resolveProxyUrl(flags.proxy, ctx.env);
      const body = await readBody(flags, ctx.cwd);
      const method = (flags.method ?? (body === undefined ? 'GET' : 'POST')).toUpperCase();
      if (!/^[A-Z]+$/.test(method)) throw usageError(`--method must be a word, got "${method}"`);
      if (!flags.path.startsWith('/')) {
        throw usageError(`--path must start with /, got "${flags.path}"`);
      }
      const host = flags.namespace === undefined ? name : `${name}.${flags.namespace}`;
      const headers = { ...parseHeaderFlags(flags.header ?? []), ...(flags.async ? { prefer: 'respond-async' } : {}), host };
      const url = `${proxyUrl}${flags.path}`;
      const timeoutMs = flags.requestTimeoutMs;
      const { reply, close } = await sendWithTokenOnDemand(ctx, { url, method, headers, body }, timeoutMs, proxyUrl);
      if (flags.async) {
        await printAccepted(ctx, reply, close, url, timeoutMs, proxyUrl);
        return;
      }
      let kept: Buffer;
      try {
        kept = await streamBody(reply, ctx, flags.raw);
      } catch (err) {
        throw transportError(err, 'the data plane', proxyUrl, timeoutMs);
      } finally {
        await close();
      }
      ctx.stderr.write(`${describeReply(reply)}\n`);
      if (reply.status < 200 || reply.status > 299) {
        throw new CliError(formatApiError(reply.status, kept.toString('utf8'), url));
      }
    });
}

/**
 * Sends without a token first, so a public function never sees the caller's token; on a 401
 * `unauthorized` (the function has `auth: token`) sends once more with the CLI's token. The
 * body is in memory, so it can be sent twice.
 */
async function sendWithTokenOnDemand(ctx: CliContext, req: Parameters<typeof sendRaw>[0], timeoutMs: number, proxyUrl: string): ReturnType<typeof sendRaw> {
  const first = await sendRaw(req, timeoutMs, proxyUrl, ctx);
  const auth = cliAuth(ctx.env, ctx.cwd);
  if (first.reply.status !== 401 || 'authorization' in req.headers || auth.token === '') return first;
  let text: string;
  try {
    const chunks: Buffer[] = [];
    for await (const chunk of first.reply.body) chunks.push(Buffer.from(chunk));
    text = Buffer.concat(chunks).toString('utf8');
  } finally {
    await first.close();
  }
  if (!text.includes('"unauthorized"')) {
    // Not the DP asking for a token: show that answer as it was.
    return { reply: { ...first.reply, body: (async function* () { yield Buffer.from(text); })() }, close: async () => undefined };
  }
  return sendRaw({ ...req, headers: { ...req.headers, ...authHeader(auth) } }, timeoutMs, proxyUrl, ctx);
}

/** `--async`: the DP answered 202 {"id"} with a Location; print the id (stdout) and where to look. */
async function printAccepted(ctx: CliContext, reply: RawReply, close: () => Promise<void>, url: string, timeoutMs: number, proxyUrl: string): Promise<void> {
  let text: string;
  try {
    const chunks: Buffer[] = [];
    for await (const chunk of reply.body) chunks.push(Buffer.from(chunk));
    text = Buffer.concat(chunks).toString('utf8');
  } catch (err) {
    throw transportError(err, 'the data plane', proxyUrl, timeoutMs);
  } finally {
    await close();
  }
  if (reply.status !== 202) throw new CliError(formatApiError(reply.status, text, url));
  let id: unknown;
  try {
    id = (JSON.parse(text) as { id?: unknown }).id;
  } catch {
    id = undefined;
  }
  if (typeof id !== 'string' || id === '') throw new CliError(`unexpected answer from ${url}: no invocation id in ${text.slice(0, 200)}`);
  const location = headerValue(reply.headers, 'location') ?? `/v1/invocations/${id}`;
  ctx.stdout.write(`${id}\n`);
  ctx.stderr.write(`accepted (HTTP 202), Location: ${location}\nsee it with: dirigent invocation get ${id} --wait\n`);
}

async function readBody(flags: InvokeFlags, cwd: string): Promise<Uint8Array | undefined> {
  if (flags.data !== undefined) return Buffer.from(flags.data, 'utf8');
  if (flags.dataFile === undefined) return undefined;
  const path = resolve(cwd, flags.dataFile);
  try {
    return await readFile(path);
  } catch (err) {
    throw usageError(`cannot read --data-file ${path}: ${(err as Error).message}`);
  }
}

export function parseHeaderFlags(entries: string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const entry of entries) {
    const colon = entry.indexOf(':');
    const key = colon < 0 ? '' : entry.slice(0, colon).trim().toLowerCase();
    if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(key)) {
      throw usageError(`--header must be Name:value, got "${entry}"`);
    }
    headers[key] = entry.slice(colon + 1).trim();
  }
  return headers;
}

/** Writes the body to stdout as it arrives; returns its start for the error line. */
async function streamBody(reply: RawReply, ctx: CliContext, raw: boolean): Promise<Buffer> {
  const kept: Buffer[] = [];
  let keptBytes = 0;
  let last = 0x0a;
  for await (const chunk of reply.body) {
    if (chunk.length === 0) continue;
    ctx.stdout.write(chunk);
    last = chunk[chunk.length - 1];
    if (keptBytes < errorBodyBytesMax) {
      kept.push(Buffer.from(chunk));
      keptBytes += chunk.length;
    }
  }
  // Without a final newline the status line on stderr (or the prompt) glues to the body, in a
  // terminal and in `2>&1 | ...` alike; --raw is for byte-exact output.
  if (!raw && last !== 0x0a) ctx.stdout.write('\n');
  return Buffer.concat(kept);
}

/** "HTTP 200 OK, cold start: yes, queued: 12 ms, sandbox: s-3" from the answer's headers. */
export function describeReply(reply: Pick<RawReply, 'status' | 'headers'>): string {
  const parts = [`HTTP ${reply.status} ${STATUS_CODES[reply.status] ?? ''}`.trimEnd()];
  const coldStart = headerValue(reply.headers, Header.coldStart);
  if (coldStart !== undefined) parts.push(`cold start: ${yesNo(coldStart)}`);
  const queueMs = headerValue(reply.headers, Header.queueMs);
  if (queueMs !== undefined) parts.push(`queued: ${queueMs} ms`);
  const sandbox = headerValue(reply.headers, Header.sandbox);
  if (sandbox !== undefined) parts.push(`sandbox: ${sandbox}`);
  return parts.join(', ');
}

function headerValue(headers: RawReply['headers'], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function yesNo(flag: string): string {
  if (flag === 'true' || flag === '1') return 'yes';
  if (flag === 'false' || flag === '0') return 'no';
  return flag;
}
