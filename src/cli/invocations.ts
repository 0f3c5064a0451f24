/**
 * @module cli/invocations
 * `dirigent invocation get|list|retry`: the async invocations the data plane stored (issue #11),
 * read over its `/v1/invocations` API (--proxy / DIRIGENT_PROXY, with the CLI's token).
 * `get --wait` polls until the invocation is finished; `list --all` follows the pages.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import { z } from 'zod';
import { cliDefaults } from '../config/defaults.js';
import { cliContext, CliError, usageError, type CliContext } from './context.js';
import { expectJson, formatApiError, resolveProxyUrl, withApiClient, type ApiReply } from './http.js';
import { numberArg } from './fn-flags.js';
import { formatTable } from './format.js';
import { cliAuth } from './token-source.js';

const attempt = z.object({
  startedAt: z.string().optional(),
  endedAt: z.string().optional(),
  outcome: z.string(),
  statusCode: z.number().optional(),
  error: z.string().optional(),
}).passthrough();

const invocation = z.object({
  id: z.string(),
  function: z.string(),
  namespace: z.string().optional(),
  status: z.string(),
  acceptedAt: z.string().optional(),
  attempts: z.array(attempt).optional(),
  result: z.object({
    statusCode: z.number(),
    headers: z.record(z.string()).optional(),
    body: z.string().optional(),
    bodyBase64: z.string().optional(),
  }).passthrough().optional(),
}).passthrough();
export type InvocationReply = z.infer<typeof invocation>;

/** A list item is a summary: its attempts are a count. */
const summary = invocation.extend({ attempts: z.number().optional() });
type InvocationSummary = z.infer<typeof summary>;
const listReply = z.object({ items: z.array(summary), nextCursor: z.string().optional() }).passthrough();

export const invocationStatuses = ['queued', 'running', 'succeeded', 'failed', 'dead'] as const;
const finished = new Set(['succeeded', 'failed', 'dead']);
/** `get --wait` polls this often. */
export const waitPollMs = 200;
/** Pages `list --all` follows at most, so a server that always sends a cursor cannot loop us forever. */
const listPagesMax = 10_000;

interface ProxyFlags {
  proxy?: string;
  json?: boolean;
}
interface GetFlags extends ProxyFlags {
  wait: boolean;
  waitTimeoutMs: number;
}
interface ListFlags extends ProxyFlags {
  function?: string;
  status?: string;
  limit: number;
  all: boolean;
}

const proxyHelp = `data-plane URL (env DIRIGENT_PROXY, default ${cliDefaults.proxyUrl})`;

export function registerInvocationCommands(program: Command): void {
  const inv = program.command('invocation')
    .description('inspect and re-drive asynchronous invocations (fn invoke --async)');
  registerGet(inv);
  registerList(inv);
  registerRetry(inv);
}

function registerGet(inv: Command): void {
  inv.command('get')
    .description('status, attempts and result of one invocation (GET /v1/invocations/{id})')
    .argument('<id>', 'the id `fn invoke --async` printed')
    .option('--proxy <url>', proxyHelp)
    .option('--wait', 'poll until it succeeded, failed or is dead', false)
    .option('--wait-timeout-ms <ms>', 'give up waiting after this long', numberArg, 600_000)
    .option('--json', 'print the API answer as JSON')
    .addHelpText('after', `
Examples:
  $ dirigent invocation get 0lx3k2a9c-1f2e3d4c --wait
  $ dirigent invocation get 0lx3k2a9c-1f2e3d4c --json | jq .attempts`)
    .action(async (id: string, flags: GetFlags, command: Command) => {
      const ctx = cliContext(command);
      const found = await pollInvocation(ctx, flags, id);
      if (flags.json) ctx.stdout.write(`${JSON.stringify(found, null, 2)}\n`);
      else ctx.stdout.write(formatInvocation(found));
      if (found.status === 'failed' || found.status === 'dead') throw new CliError(`invocation ${id} is ${found.status}`);
    });
}

async function pollInvocation(ctx: CliContext, flags: GetFlags, id: string): Promise<InvocationReply> {
  const proxyUrl = resolveProxyUrl(flags.proxy, ctx.env);
  const path = `/v1/invocations/${encodeURIComponent(id)}`;
  const deadline = Date.now() + flags.waitTimeoutMs;
  return withApiClient(proxyUrl, async (api) => {
    for (;;) {
      const found = expectJson(await api.call('GET', path), [200], invocation);
      if (!flags.wait || finished.has(found.status)) return found;
      if (Date.now() >= deadline) throw new CliError(`invocation ${id} still ${found.status} after ${flags.waitTimeoutMs} ms`);
      await sleep(waitPollMs);
    }
  }, cliAuth(ctx.env, ctx.cwd), ctx);
}

/** The status block, the attempts table and the function's answer. */
export function formatInvocation(inv: InvocationReply): string {
  const name = inv.namespace && inv.namespace !== 'default' ? `${inv.function}.${inv.namespace}` : inv.function;
  const lines = [`id:        ${inv.id}`, `function:  ${name}`, `status:    ${inv.status}`];
  if (inv.acceptedAt) lines.push(`accepted:  ${inv.acceptedAt}`);
  let out = `${lines.join('\n')}\n`;
  const attempts = inv.attempts ?? [];
  if (attempts.length > 0) {
    out += `\nattempts:\n${formatTable(['#', 'STARTED', 'ENDED', 'OUTCOME', 'STATUS', 'ERROR'], attempts.map((a, i) => [
      String(i + 1), a.startedAt ?? '', a.endedAt ?? '', a.outcome, a.statusCode === undefined ? '' : String(a.statusCode), a.error ?? '',
    ]))}`;
  }
  if (inv.result) {
    const body = inv.result.body ?? (inv.result.bodyBase64 === undefined ? '' : `(binary, base64) ${inv.result.bodyBase64}`);
    out += `\nresult: HTTP ${inv.result.statusCode}\n${body}${body.endsWith('\n') || body === '' ? '' : '\n'}`;
  }
  return out;
}

function registerList(inv: Command): void {
  inv.command('list')
    .description('list invocations, oldest first (GET /v1/invocations)')
    .option('--function <name>', 'only this function (<name> or <name>.<namespace>)')
    .option('--status <s>', `only this status: ${invocationStatuses.join(', ')}`)
    .option('--limit <n>', 'invocations per page', numberArg, 50)
    .option('--all', 'follow the pages to the end', false)
    .option('--proxy <url>', proxyHelp)
    .option('--json', 'print the items as JSON')
    .addHelpText('after', `
Examples:
  $ dirigent invocation list --status dead
  $ dirigent invocation list --function hello --all --json`)
    .action(async (flags: ListFlags, command: Command) => {
      const ctx = cliContext(command);
      if (flags.status !== undefined && !(invocationStatuses as readonly string[]).includes(flags.status)) {
        throw usageError(`--status must be one of ${invocationStatuses.join(', ')}, got "${flags.status}"`);
      }
      if (!Number.isInteger(flags.limit) || flags.limit < 1) throw usageError(`--limit must be a positive integer, got ${flags.limit}`);
      const { items, nextCursor } = await listPages(ctx, flags);
      if (flags.json) {
        ctx.stdout.write(`${JSON.stringify({ items, ...(nextCursor ? { nextCursor } : {}) }, null, 2)}\n`);
        return;
      }
      if (items.length === 0) {
        ctx.stdout.write('no invocations\n');
        return;
      }
      ctx.stdout.write(formatTable(['ID', 'FUNCTION', 'STATUS', 'ATTEMPTS', 'ACCEPTED'], items.map((i) => [
        i.id, i.function, i.status, String(i.attempts ?? 0), i.acceptedAt ?? '',
      ])));
      if (nextCursor) ctx.stderr.write(`more: --all, or the API with cursor=${nextCursor}\n`);
    });
}

async function listPages(ctx: CliContext, flags: ListFlags): Promise<{ items: InvocationSummary[]; nextCursor?: string }> {
  const proxyUrl = resolveProxyUrl(flags.proxy, ctx.env);
  return withApiClient(proxyUrl, async (api) => {
    const items: InvocationSummary[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < listPagesMax; page++) {
      const query = new URLSearchParams({ limit: String(flags.limit) });
      if (flags.function) query.set('function', flags.function);
      if (flags.status) query.set('status', flags.status);
      if (cursor) query.set('cursor', cursor);
      const reply = expectJson(await api.call('GET', `/v1/invocations?${query.toString()}`), [200], listReply);
      items.push(...reply.items);
      cursor = reply.nextCursor;
      if (!flags.all || !cursor) break;
    }
    return { items, ...(cursor ? { nextCursor: cursor } : {}) };
  }, cliAuth(ctx.env, ctx.cwd), ctx);
}

function registerRetry(inv: Command): void {
  inv.command('retry')
    .description('re-drive a failed or dead invocation (POST /v1/invocations/{id}/retry)')
    .argument('<id>', 'invocation id')
    .option('--proxy <url>', proxyHelp)
    .addHelpText('after', `
Examples:
  $ dirigent invocation list --status dead
  $ dirigent invocation retry 0lx3k2a9c-1f2e3d4c`)
    .action(async (id: string, flags: ProxyFlags, command: Command) => {
      const ctx = cliContext(command);
      const proxyUrl = resolveProxyUrl(flags.proxy, ctx.env);
      const reply: ApiReply = await withApiClient(proxyUrl, (api) => api.call('POST', `/v1/invocations/${encodeURIComponent(id)}/retry`), cliAuth(ctx.env, ctx.cwd), ctx);
      if (reply.status === 409) {
        throw new CliError(`${formatApiError(reply.status, reply.text, reply.url)}; only failed and dead invocations can be retried`);
      }
      expectJson(reply, [202], z.object({ id: z.string() }).passthrough());
      ctx.stdout.write(`invocation ${id} queued again\n`);
    });
}
