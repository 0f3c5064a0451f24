/**
 * @module cli/fn
 * `dirigent fn deploy|list|get|update|delete|invoke`: the user's side of the management API
 * (DESIGN §8). Each action is: flags -> one HTTP call -> print; failures throw CliError (see
 * cli/context for the exit codes). `invoke` lives in cli/invoke.
 */
import type { Command } from 'commander';
import { cliDefaults } from '../config/defaults.js';
import { cliContext, CliError, usageError, type CliContext } from './context.js';
import {
  expectJson,
  expectStatus,
  formatApiError,
  resolveApiUrl,
  resolveProxyUrl,
  withApiClient,
} from './http.js';
import { addSpecOptions, specBodyFromFlags, type SpecFlags } from './fn-flags.js';
import { formatFunction, formatTable } from './format.js';
import { functionListReply, functionReply, rawJson, type FunctionReply } from './replies.js';
import { registerInvokeCommand } from './invoke.js';
import { cliAuth } from './token-source.js';

interface ApiFlags {
  api?: string;
  namespace?: string;
}
interface JsonFlags extends ApiFlags {
  json?: boolean;
}

const namespaceHelp = 'namespace of the function (default: the token\'s, else default)';
const apiOptionHelp =
  `control-plane API URL (env DIRIGENT_API, default ${cliDefaults.apiUrl})`;

export function registerFnCommands(program: Command): void {
  const fn = program.command('fn')
    .description('deploy, inspect, update, delete and invoke functions');
  registerDeploy(fn);
  registerList(fn);
  registerGet(fn);
  registerUpdate(fn);
  registerDelete(fn);
  registerInvokeCommand(fn);
}

function registerDeploy(fn: Command): void {
  const deploy = fn.command('deploy')
    .description('register a new function (POST /v1/functions)')
    .argument('<name>', 'function name: lower-case letters, digits and -, starting with a letter')
    .option('--api <url>', apiOptionHelp)
    .option('--namespace <ns>', namespaceHelp);
  addSpecOptions(deploy)
    .addHelpText('after', `
Examples:
  $ dirigent fn deploy hello --command "node examples/hello/server.js"
  $ dirigent fn deploy echo --command '["python3","-m","http.server"]' --env MODE=dev --max 4
  $ dirigent fn deploy trace --image docker.io/cvetkovic/dirigent_trace_function --port 80 \\
      --preset coldStartSweep
  $ dirigent fn deploy busy --command "node server.js" --working-dir examples/trace-function \\
      --scaling '{"stableWindowS":30,"panicWindowS":3}'`)
    .action(async (name: string, flags: SpecFlags & ApiFlags, command: Command) => {
      const ctx = cliContext(command);
      if (flags.command === undefined && flags.image === undefined) {
        throw usageError('give --command "<program args...>" or --image <ref>');
      }
      const body = { name, ...(flags.namespace !== undefined ? { namespace: flags.namespace } : {}), ...specBodyFromFlags(flags, ctx.cwd) };
      const apiUrl = resolveApiUrl(flags.api, ctx.env);
      const reply = await withApiClient(apiUrl, (api) => api.call('POST', '/v1/functions', body), cliAuth(ctx.env, ctx.cwd), ctx);
      if (reply.status === 409) {
        throw new CliError(`${formatApiError(reply.status, reply.text, reply.url)}; ` +
          `change it with \`dirigent fn update ${name} ...\` or remove it with ` +
          `\`dirigent fn delete ${name}\``);
      }
      const created = expectJson(reply, [201], functionReply);
      ctx.stdout.write(`deployed function ${name}\n${formatFunction(created)}`);
      printInvokeHint(ctx, created);
    });
}

function printInvokeHint(ctx: CliContext, reply: FunctionReply): void {
  const name = reply.function.name;
  let proxyUrl: string = cliDefaults.proxyUrl;
  try {
    proxyUrl = resolveProxyUrl(undefined, ctx.env);
  } catch {
    // A malformed DIRIGENT_PROXY must not turn a successful deploy into a failure;
    // `fn invoke` reports it when it matters.
  }
  ctx.stdout.write(`\ninvoke it:\n` +
    `  dirigent fn invoke ${name} --data 'hi'\n` +
    `  curl -H 'Host: ${name}' --data 'hi' ${proxyUrl}/\n`);
}

function registerList(fn: Command): void {
  fn.command('list')
    .description('list functions with their sandbox counts (GET /v1/functions)')
    .option('--api <url>', apiOptionHelp)
    .option('--namespace <ns>', namespaceHelp)
    .option('--json', 'print the API answer as JSON')
    .addHelpText('after', `
Examples:
  $ dirigent fn list
  $ dirigent fn list --json | jq '.functions[].function.name'`)
    .action(async (flags: JsonFlags, command: Command) => {
      const ctx = cliContext(command);
      const apiUrl = resolveApiUrl(flags.api, ctx.env);
      const reply = await withApiClient(apiUrl, (api) => api.call('GET', `/v1/functions${namespaceQuery(flags.namespace)}`), cliAuth(ctx.env, ctx.cwd), ctx);
      if (flags.json) {
        ctx.stdout.write(`${JSON.stringify(expectJson(reply, [200], rawJson), null, 2)}\n`);
        return;
      }
      const list = expectJson(reply, [200], functionListReply);
      if (list.functions.length === 0) {
        ctx.stdout.write('no functions deployed (see `dirigent fn deploy --help`)\n');
        return;
      }
      // Names repeat across namespaces: qualify them once more than one namespace shows.
      const qualified = list.functions.some((f) => (f.function.namespace ?? 'default') !== 'default');
      const rows = list.functions.map(({ function: spec, status }) => [
        qualified ? `${spec.name}.${spec.namespace ?? 'default'}` : spec.name, String(status.desired), String(status.ready), String(status.creating),
        String(status.queueDepth), status.unschedulableReason ?? '',
      ]);
      // The REASON column appears only when a function cannot be placed, so it stands out.
      const headers = ['NAME', 'DESIRED', 'READY', 'CREATING', 'QUEUE', 'REASON'];
      const shown = rows.some((row) => row[5] !== '') ? headers.length : headers.length - 1;
      ctx.stdout.write(formatTable(headers.slice(0, shown), rows.map((row) => row.slice(0, shown))));
    });
}

function registerGet(fn: Command): void {
  fn.command('get')
    .description('show one function\'s spec and live status (GET /v1/functions/{name})')
    .argument('<name>', 'function name')
    .option('--api <url>', apiOptionHelp)
    .option('--namespace <ns>', namespaceHelp)
    .option('--json', 'print the API answer as JSON')
    .addHelpText('after', `
Examples:
  $ dirigent fn get hello
  $ dirigent fn get hello --json`)
    .action(async (name: string, flags: JsonFlags, command: Command) => {
      const ctx = cliContext(command);
      const apiUrl = resolveApiUrl(flags.api, ctx.env);
      const reply = await withApiClient(apiUrl, (api) => api.call('GET', functionPath(name, flags.namespace)), cliAuth(ctx.env, ctx.cwd), ctx);
      ctx.stdout.write(flags.json
        ? `${JSON.stringify(expectJson(reply, [200], rawJson), null, 2)}\n`
        : formatFunction(expectJson(reply, [200], functionReply)));
    });
}

function registerUpdate(fn: Command): void {
  const update = fn.command('update')
    .description('change some fields of a function (PATCH /v1/functions/{name})')
    .argument('<name>', 'function name')
    .option('--api <url>', apiOptionHelp)
    .option('--namespace <ns>', namespaceHelp);
  addSpecOptions(update)
    .addHelpText('after', `
Only the flags given change; --env replaces the whole environment, --scaling and --min/--max
change only the knobs they name, --preset resets all knobs to the preset first.

Examples:
  $ dirigent fn update hello --max 10 --concurrency 4
  $ dirigent fn update hello --scaling '{"stableWindowS":30}'
  $ dirigent fn update hello --env GREETING=hi --env MODE=prod`)
    .action(async (name: string, flags: SpecFlags & ApiFlags, command: Command) => {
      const ctx = cliContext(command);
      const body = specBodyFromFlags(flags, ctx.cwd);
      if (Object.keys(body).length === 0) {
        throw usageError('nothing to update: give at least one flag (see --help)');
      }
      const apiUrl = resolveApiUrl(flags.api, ctx.env);
      const reply = await withApiClient(apiUrl,
        (api) => api.call('PATCH', functionPath(name, flags.namespace), body), cliAuth(ctx.env, ctx.cwd), ctx);
      const updated = expectJson(reply, [200], functionReply);
      ctx.stdout.write(`updated function ${name}\n${formatFunction(updated)}`);
    });
}

function registerDelete(fn: Command): void {
  fn.command('delete')
    .description('remove a function and its sandboxes (DELETE /v1/functions/{name})')
    .argument('<name>', 'function name')
    .option('--api <url>', apiOptionHelp)
    .option('--namespace <ns>', namespaceHelp)
    .addHelpText('after', `
Example:
  $ dirigent fn delete hello`)
    .action(async (name: string, flags: ApiFlags, command: Command) => {
      const ctx = cliContext(command);
      const apiUrl = resolveApiUrl(flags.api, ctx.env);
      const reply = await withApiClient(apiUrl, (api) => api.call('DELETE', functionPath(name, flags.namespace)), cliAuth(ctx.env, ctx.cwd), ctx);
      expectStatus(reply, [200, 204]);
      ctx.stdout.write(`deleted function ${name}\n`);
    });
}

function functionPath(name: string, namespace: string | undefined): string {
  return `/v1/functions/${encodeURIComponent(name)}${namespaceQuery(namespace)}`;
}

function namespaceQuery(namespace: string | undefined): string {
  return namespace === undefined ? '' : `?namespace=${encodeURIComponent(namespace)}`;
}
