/**
 * @module cli/up-banner
 * What `dirigent up` prints once the cluster is up: every address, and how to try it.
 */
import { cliDefaults } from '../config/defaults.js';
import type { UpLayout } from './up-layout.js';

export function printBanner(o: { runtime: string; workers: string; tls?: boolean }, layout: UpLayout, stateDir: string): void {
  const workers = Number(o.workers);
  const runtimes = o.runtime.split(',');
  const cmd = runtimes.includes('process')
    ? "fn deploy hello --command 'node examples/hello/server.js'"
    : runtimes.includes('emulated')
      ? 'fn deploy hello --image emulated'
      : 'fn deploy hello --image oci-archive:/tmp/hello-image.tar   # examples/hello-image/build.sh';
  const defaults = layout.apiUrl === cliDefaults.apiUrl && layout.proxyUrl === cliDefaults.proxyUrl;
  const env = layout.ha || !defaults ? `DIRIGENT_API=${layout.apiUrl} DIRIGENT_PROXY=${layout.proxyUrl} ` : '';
  process.stdout.write(`
Dirigent is up (${o.runtime} runtime, ${workers} worker${workers > 1 ? 's' : ''}${layout.ha ? ', high availability' : ''}).
  management API   ${layout.apiUrl}   (GET /v1/functions, /v1/cluster, /metrics)
  invocations      ${layout.proxyUrl}   (Host: <function> or /function/<function>/)
${replicaLines(layout)}  state and logs   ${stateDir}

Try it from another terminal (in the repository; \`npm link\` puts \`dirigent\` on your PATH):
  ${env}./bin/dirigent.js ${cmd}
  ${env}./bin/dirigent.js fn invoke hello
  ${o.tls ? `curl --cacert ${stateDir}/tls/ca.pem ${layout.proxyUrl}/function/hello/` : `curl -H 'Host: hello' ${layout.proxyUrl}/`}
${o.tls ? `TLS: the CLI trusts ${stateDir}/tls/ca.pem by itself (from $DIRIGENT_STATE_DIR or ./.dirigent; else set DIRIGENT_CA).
` : ''}
The CLI reads the admin token from ${stateDir}/admin.token (or DIRIGENT_TOKEN); make more with
  ./bin/dirigent.js token create --scope deploy --namespace team-a
Functions are public (auth: none) unless deployed with --auth token.

Ctrl-C stops the cluster; a component that dies is restarted.
`);
}

function replicaLines(l: UpLayout): string {
  if (!l.ha) return `  internal gRPC    ${l.controlPlaneRpcs[0]}\n`;
  const cps = l.controlPlaneApis.map((api, k) => `  control plane ${k}  API ${l.scheme}://${api}   gRPC ${l.controlPlaneRpcs[k]}\n`);
  const dps = l.dataPlaneProxies.map((p, k) => `  data plane ${k}     ${l.scheme}://${p}\n`);
  return [...cps, ...dps, l.etcdUrl ? `  etcd             ${l.etcdUrl}\n` : ''].join('');
}
