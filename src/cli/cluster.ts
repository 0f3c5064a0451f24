/**
 * @module cli/cluster
 * `dirigent cluster status`: the leader, the workers (capacity, allocation, schedulability,
 * sandboxes, heartbeat age) and the data planes, from `GET /v1/cluster`.
 */
import type { Command } from 'commander';
import { capacityBinding } from '../api/capacity.js';
import { cliDefaults } from '../config/defaults.js';
import { cliContext } from './context.js';
import { expectJson, resolveApiUrl, withApiClient } from './http.js';
import { cliAuth } from './token-source.js';
import { formatTable } from './format.js';
import { clusterReply, rawJson, type ClusterReply } from './replies.js';

interface StatusFlags {
  api?: string;
  json?: boolean;
}

export function registerClusterCommands(program: Command): void {
  const cluster = program.command('cluster').description('inspect the cluster');
  cluster.command('status')
    .description('show the leader, workers and data planes (GET /v1/cluster)')
    .option('--api <url>',
      `control-plane API URL (env DIRIGENT_API, default ${cliDefaults.apiUrl})`)
    .option('--json', 'print the API answer as JSON')
    .addHelpText('after', `
Examples:
  $ dirigent cluster status
  $ dirigent cluster status --json | jq '.workers[] | select(.schedulable | not)'`)
    .action(async (flags: StatusFlags, command: Command) => {
      const ctx = cliContext(command);
      const apiUrl = resolveApiUrl(flags.api, ctx.env);
      // The table shows counts only: the ids are left out unless the answer is printed as sent.
      const path = flags.json ? '/v1/cluster' : '/v1/cluster?sandboxIds=false';
      const reply = await withApiClient(apiUrl, (api) => api.call('GET', path), cliAuth(ctx.env, ctx.cwd), ctx);
      ctx.stdout.write(flags.json
        ? `${JSON.stringify(expectJson(reply, [200], rawJson), null, 2)}\n`
        : formatCluster(expectJson(reply, [200], clusterReply)));
    });
}

function formatCluster(status: ClusterReply): string {
  const leader = status.leader === null
    ? 'leader: none (an election may be under way)\n'
    : `leader: ${status.leader.id} (${status.leader.apiAddress})\n`;
  const workers = status.workers.map((worker) => [
    worker.id,
    worker.address,
    worker.schedulable ? 'yes' : 'no',
    `${worker.allocated.cpuMillis}/${worker.capacity.cpuMillis}`,
    `${worker.allocated.memoryMiB}/${worker.capacity.memoryMiB}`,
    String(worker.sandboxes),
    `${Math.round(worker.lastHeartbeatAgoMs)} ms ago`,
  ]);
  const dataPlanes = status.dataPlanes.map((dp) => [
    dp.id, dp.proxyAddress, dp.connected ? 'yes' : 'no',
  ]);
  const binding = status.workers.length === 0 ? null : capacityBinding(status.workers);
  const refused = status.placementRefusals;
  return [
    leader,
    `\nworkers (${workers.length}):\n`,
    workers.length === 0 ? '  none registered\n' : formatTable(
      ['ID', 'ADDRESS', 'SCHEDULABLE', 'CPU MILLIS (ALLOC/CAP)', 'MEMORY MiB (ALLOC/CAP)',
        'SANDBOXES', 'HEARTBEAT'], workers),
    `\ndata planes (${dataPlanes.length}):\n`,
    dataPlanes.length === 0 ? '  none connected\n'
      : formatTable(['ID', 'PROXY', 'CONNECTED'], dataPlanes),
    binding === null ? '' : `\ncapacity: ${binding}\n`,
    refused === undefined || refused.total === 0 ? ''
      : `\nplacement: ${refused.total.toLocaleString('en-US')} sandbox${refused.total === 1 ? '' : 'es'} found no worker able to take ${refused.total === 1 ? 'it' : 'them'} since the leader started (last: ${refused.lastReason})\n`,
  ].join('');
}
