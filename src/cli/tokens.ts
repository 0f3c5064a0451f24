/**
 * @module cli/tokens
 * `dirigent token create|list|revoke` and `dirigent namespace list|get|set|reset`: the admin's
 * side of tokens and quotas. `token create` prints the token alone on stdout, so
 * `export DIRIGENT_TOKEN=$(dirigent token create --scope deploy --namespace team-a)` works.
 */
import type { Command } from 'commander';
import { z } from 'zod';
import { cliDefaults } from '../config/defaults.js';
import { cliContext, usageError } from './context.js';
import { expectJson, expectStatus, resolveApiUrl, withApiClient, type ApiReply } from './http.js';
import { formatTable } from './format.js';
import { cliAuth } from './token-source.js';

const apiOptionHelp = `control-plane API URL (env DIRIGENT_API, default ${cliDefaults.apiUrl})`;
const tokenView = z.object({ id: z.string(), scope: z.string(), namespace: z.string(), description: z.string(), createdAt: z.string() });
const quotas = z.object({ functions: z.number(), sandboxes: z.number(), cpuMillis: z.number(), memoryMiB: z.number() });
const namespaceView = z.object({ name: z.string(), quotas, usage: quotas });

async function call(command: Command, api: string | undefined, method: string, path: string, body?: unknown): Promise<ApiReply> {
  const ctx = cliContext(command);
  return withApiClient(resolveApiUrl(api, ctx.env), (c) => c.call(method, path, body), cliAuth(ctx.env, ctx.cwd));
}

export function registerTokenCommands(program: Command): void {
  const token = program.command('token').description('create, list and revoke API tokens (admin)');
  token.command('create')
    .description('make a token and print it alone on stdout (shown only this once)')
    .requiredOption('--scope <scope>', 'admin, deploy, invoke or read')
    .option('--namespace <ns>', 'the namespace it acts in (not for admin; default: default)')
    .option('--description <text>', 'what it is for (at most 200 characters)')
    .option('--api <url>', apiOptionHelp)
    .action(async (o: { scope: string; namespace?: string; description?: string; api?: string }, command: Command) => {
      const body = { scope: o.scope, ...(o.namespace !== undefined ? { namespace: o.namespace } : {}), ...(o.description !== undefined ? { description: o.description } : {}) };
      const made = expectJson(await call(command, o.api, 'POST', '/v1/tokens', body), [201], z.object({ token: z.string() }));
      cliContext(command).stdout.write(`${made.token}\n`);
    });
  token.command('list')
    .description('list tokens (never their secrets)')
    .option('--api <url>', apiOptionHelp)
    .action(async (o: { api?: string }, command: Command) => {
      const list = expectJson(await call(command, o.api, 'GET', '/v1/tokens'), [200], z.object({ tokens: z.array(tokenView) }));
      const rows = list.tokens.map((t) => [t.id, t.scope, t.namespace || '*', t.description, t.createdAt]);
      cliContext(command).stdout.write(formatTable(['ID', 'SCOPE', 'NAMESPACE', 'DESCRIPTION', 'CREATED'], rows));
    });
  token.command('revoke')
    .description('revoke a token: refused by the API and the data planes once this returns')
    .argument('<id>', 'the token id (token list)')
    .option('--api <url>', apiOptionHelp)
    .action(async (id: string, o: { api?: string }, command: Command) => {
      expectStatus(await call(command, o.api, 'DELETE', `/v1/tokens/${encodeURIComponent(id)}`), [204]);
      cliContext(command).stdout.write(`revoked token ${id}\n`);
    });
  registerNamespaceCommands(program);
}

function printNamespaces(command: Command, list: z.infer<typeof namespaceView>[]): void {
  const cell = (used: number, max: number): string => `${used}/${max === 0 ? '-' : max}`;
  const rows = list.map((n) => [n.name, cell(n.usage.functions, n.quotas.functions), cell(n.usage.sandboxes, n.quotas.sandboxes),
    cell(n.usage.cpuMillis, n.quotas.cpuMillis), cell(n.usage.memoryMiB, n.quotas.memoryMiB)]);
  cliContext(command).stdout.write(formatTable(['NAMESPACE', 'FUNCTIONS', 'SANDBOXES', 'CPU_MILLIS', 'MEMORY_MIB'], rows));
}

function registerNamespaceCommands(program: Command): void {
  const ns = program.command('namespace').description('namespace quotas and usage (used/quota, - = no bound)');
  ns.command('list').option('--api <url>', apiOptionHelp).action(async (o: { api?: string }, command: Command) => {
    printNamespaces(command, expectJson(await call(command, o.api, 'GET', '/v1/namespaces'), [200], z.object({ namespaces: z.array(namespaceView) })).namespaces);
  });
  ns.command('get').argument('<ns>').option('--api <url>', apiOptionHelp).action(async (name: string, o: { api?: string }, command: Command) => {
    printNamespaces(command, [expectJson(await call(command, o.api, 'GET', `/v1/namespaces/${encodeURIComponent(name)}`), [200], namespaceView)]);
  });
  ns.command('set').argument('<ns>')
    .option('--functions <n>', 'most functions').option('--sandboxes <n>', 'most live sandboxes')
    .option('--cpu-millis <n>', 'most CPU of live sandboxes').option('--memory-mib <n>', 'most memory of live sandboxes')
    .option('--api <url>', apiOptionHelp)
    .action(async (name: string, o: Record<string, string | undefined>, command: Command) => {
      const q: Record<string, number> = {};
      for (const [flag, key] of [['functions', 'functions'], ['sandboxes', 'sandboxes'], ['cpuMillis', 'cpuMillis'], ['memoryMib', 'memoryMiB']] as const) {
        const v = o[flag];
        if (v === undefined) continue;
        if (!/^\d+$/.test(v)) throw usageError(`--${flag.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} must be a whole number (0 = no bound), got ${v}`);
        q[key] = Number(v);
      }
      if (Object.keys(q).length === 0) throw usageError('give at least one of --functions, --sandboxes, --cpu-millis, --memory-mib');
      printNamespaces(command, [expectJson(await call(command, o.api, 'PUT', `/v1/namespaces/${encodeURIComponent(name)}`, { quotas: q }), [200], namespaceView)]);
    });
  ns.command('reset').argument('<ns>').option('--api <url>', apiOptionHelp).action(async (name: string, o: { api?: string }, command: Command) => {
    expectStatus(await call(command, o.api, 'DELETE', `/v1/namespaces/${encodeURIComponent(name)}`), [204]);
    cliContext(command).stdout.write(`namespace ${name} uses the default quotas again\n`);
  });
}
