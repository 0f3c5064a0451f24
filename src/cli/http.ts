/**
 * @module cli/http
 * The CLI's HTTP client for the management API (JSON) and the data plane (raw bytes).
 *
 * - Where: `--api` flag, else env DIRIGENT_API, else cliDefaults.apiUrl; the same for
 *   `--proxy` / DIRIGENT_PROXY / cliDefaults.proxyUrl.
 * - Every call has one deadline covering connect, headers and body; a client owns its own
 *   connection pool and closes it, so a finished command leaves no socket behind.
 * - HTTP statuses are values (`ApiReply`); only "could not talk at all" throws, as CliError,
 *   worded for a person: connection refused suggests `dirigent up`.
 * - API error bodies `{"error":{code,message,field}}` become "<message> (field: <field>)".
 * - An https URL is checked against DIRIGENT_CA (a PEM file), else the CA `certs create` or
 *   `up --tls` wrote ($DIRIGENT_STATE_DIR/tls/ca.pem, ./.dirigent/tls/ca.pem), else the system roots.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, buildConnector, request } from 'undici';
import type { ZodType } from 'zod';
import { cliDefaults } from '../config/defaults.js';
import { CliError, ExitCode, processCliIo, usageError } from './context.js';
import { authHeader, unauthorizedHint, type CliAuth } from './token-source.js';

export type Env = Readonly<Record<string, string | undefined>>;

export interface ApiReply {
  status: number;
  text: string;
  url: string;
}

export interface RawReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: AsyncIterable<Uint8Array>;
}

export interface RawRequest {
  url: string;
  method: string;
  headers: Record<string, string>;
  body?: Uint8Array;
}

/** Transport errors that mean "nothing answers there", as opposed to "it broke mid-way". */
const unreachableCodes: ReadonlySet<string> = new Set([
  'ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN',
  'UND_ERR_CONNECT_TIMEOUT',
]);
/** Error bodies that are not API errors are quoted, cut to this length. */
const bodySnippetCharsMax = 200;

export function resolveApiUrl(flag: string | undefined, env: Env): string {
  return checkBaseUrl(flag ?? env.DIRIGENT_API ?? cliDefaults.apiUrl, '--api / DIRIGENT_API');
}

export function resolveProxyUrl(flag: string | undefined, env: Env): string {
  return checkBaseUrl(flag ?? env.DIRIGENT_PROXY ?? cliDefaults.proxyUrl,
    '--proxy / DIRIGENT_PROXY');
}

function checkBaseUrl(text: string, source: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw usageError(`${source} must be an http URL like ${cliDefaults.apiUrl}, got "${text}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw usageError(`${source} must be an http or https URL, got "${text}"`);
  }
  return text.replace(/\/+$/, '');
}

/** Where the CLI looks for a CA: the env, then the files `certs create`/`up --tls` write. */
export interface TrustSource {
  env: Env;
  cwd: string;
}

/** The CA to trust for `baseUrl`: undefined for http, or when none is found (system roots). */
export function caFor(baseUrl: string, trust: TrustSource = processCliIo()): Buffer | undefined {
  if (!baseUrl.startsWith('https:')) return undefined;
  const named = trust.env.DIRIGENT_CA;
  if (named !== undefined && named !== '') {
    try {
      return readFileSync(named);
    } catch (err) {
      throw usageError(`DIRIGENT_CA ${named}: cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
  }
  const stateDir = trust.env.DIRIGENT_STATE_DIR;
  const candidates = [...(stateDir ? [join(stateDir, 'tls', 'ca.pem')] : []), join(trust.cwd, '.dirigent', 'tls', 'ca.pem')];
  const found = candidates.find((p) => existsSync(p));
  return found === undefined ? undefined : readFileSync(found);
}

/**
 * For https the TLS name is the URL's host, never the Host header: undici would take it from
 * `Host: <function>` (how `fn invoke` routes), which no certificate names.
 */
function agentFor(baseUrl: string, trust?: TrustSource): Agent {
  return baseUrl.startsWith('https:') ? tlsAgent(caFor(baseUrl, trust)) : new Agent();
}

/** An HTTPS agent trusting `ca` (system roots when undefined) that names the URL's host in TLS. */
export function tlsAgent(ca: Buffer | undefined): Agent {
  return new Agent({ connect: hostNamingConnector(ca) });
}

/**
 * undici's connector (TLS for https origins, plain TCP for http) trusting `ca`, whose TLS name
 * is the origin's host whatever the request's Host header says.
 */
export function hostNamingConnector(ca: Buffer | undefined, timeoutMs?: number): buildConnector.connector {
  const tls = buildConnector({ ...(ca === undefined ? {} : { ca }), ...(timeoutMs === undefined ? {} : { timeout: timeoutMs }) });
  return (opts, callback) => tls({ ...opts, servername: undefined }, callback);
}

/** A JSON client for the management API; `close()` it when done (see `withApiClient`). */
class ApiClient {
  private readonly agent: Agent;

  constructor(
    readonly baseUrl: string,
    private readonly auth: CliAuth | null,
    private readonly timeoutMs: number = cliDefaults.requestTimeoutMs,
    trust?: TrustSource,
  ) {
    this.agent = agentFor(baseUrl, trust);
  }

  async call(method: string, path: string, body?: unknown): Promise<ApiReply> {
    const url = `${this.baseUrl}${path}`;
    const headers: Record<string, string> = { accept: 'application/json', ...(this.auth ? authHeader(this.auth) : {}) };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let reply: ApiReply;
    try {
      const res = await request(url, {
        method: method as 'GET',
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        dispatcher: this.agent,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      reply = { status: res.statusCode, text: await res.body.text(), url };
    } catch (err) {
      throw transportError(err, 'the control plane', this.baseUrl, this.timeoutMs);
    }
    if (reply.status === 401 && this.auth) throw new CliError(unauthorizedHint(this.auth));
    return reply;
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}

/** `auth`: the CLI's token (cli/token-source); every call carries it. */
export async function withApiClient<T>(
  baseUrl: string,
  use: (api: ApiClient) => Promise<T>,
  auth: CliAuth | null = null,
  trust?: TrustSource,
): Promise<T> {
  const api = new ApiClient(baseUrl, auth, cliDefaults.requestTimeoutMs, trust);
  try {
    return await use(api);
  } finally {
    await api.close();
  }
}

/** The reply's JSON if its status is one of `expected`, else a CliError with the API's words. */
export function expectJson<T>(reply: ApiReply, expected: number[], schema: ZodType<T>): T {
  if (!expected.includes(reply.status)) {
    throw new CliError(formatApiError(reply.status, reply.text, reply.url));
  }
  let json: unknown;
  try {
    json = JSON.parse(reply.text);
  } catch {
    throw new CliError(`unexpected answer from ${reply.url}: not JSON: ${snippet(reply.text)}`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue === undefined ? '' : ` at ${issue.path.join('.') || 'top level'}`;
    throw new CliError(`unexpected answer from ${reply.url}${where}: ${issue?.message ?? ''}`);
  }
  return parsed.data;
}

/** Throws unless the reply's status is one of `expected`. */
export function expectStatus(reply: ApiReply, expected: number[]): void {
  if (!expected.includes(reply.status)) {
    throw new CliError(formatApiError(reply.status, reply.text, reply.url));
  }
}

/**
 * One line for a failed reply: the API's own message and field when the body is an API
 * error, else the status and the start of the body.
 */
export function formatApiError(status: number, text: string, url: string): string {
  const apiError = parseApiError(text);
  if (apiError !== undefined) {
    const field = apiError.field ? ` (field: ${apiError.field})` : '';
    return `${apiError.message}${field}`;
  }
  const body = text.trim() === '' ? '' : `: ${snippet(text)}`;
  return `HTTP ${status} from ${url}${body}`;
}

function parseApiError(text: string): { message: string; field?: string } | undefined {
  try {
    const json: unknown = JSON.parse(text);
    if (typeof json !== 'object' || json === null) return undefined;
    const error = (json as { error?: unknown }).error;
    if (typeof error !== 'object' || error === null) return undefined;
    const { message, field } = error as { message?: unknown; field?: unknown };
    if (typeof message !== 'string') return undefined;
    return typeof field === 'string' ? { message, field } : { message };
  } catch {
    return undefined;
  }
}

/** Sends one request to the data plane, streaming the answer's body back. */
export async function sendRaw(
  req: RawRequest,
  timeoutMs: number,
  baseUrl: string,
  trust?: TrustSource,
): Promise<{ reply: RawReply; close: () => Promise<void> }> {
  const agent = agentFor(baseUrl, trust);
  try {
    const res = await request(req.url, {
      method: req.method as 'GET',
      headers: req.headers,
      body: req.body,
      dispatcher: agent,
      signal: AbortSignal.timeout(timeoutMs),
    });
    const reply = { status: res.statusCode, headers: res.headers, body: res.body };
    return { reply, close: () => agent.close() };
  } catch (err) {
    await agent.close();
    throw transportError(err, 'the data plane', baseUrl, timeoutMs);
  }
}

/** Words for a failed exchange; exported for commands that stream bodies themselves. */
export function transportError(
  err: unknown,
  what: string,
  baseUrl: string,
  timeoutMs: number,
): CliError {
  const code = (err as { code?: unknown }).code;
  const name = (err as { name?: unknown }).name;
  if (typeof code === 'string' && unreachableCodes.has(code)) {
    return new CliError(`cannot reach ${what} at ${baseUrl}: is \`dirigent up\` running?`,
      ExitCode.failed);
  }
  if (name === 'TimeoutError' || code === 'UND_ERR_HEADERS_TIMEOUT' ||
    code === 'UND_ERR_BODY_TIMEOUT') {
    return new CliError(`no answer from ${what} at ${baseUrl} within ${timeoutMs} ms`);
  }
  const message = err instanceof Error ? err.message : String(err);
  return new CliError(`request to ${what} at ${baseUrl} failed: ${message}`);
}

function snippet(text: string): string {
  const line = text.trim().replace(/\s+/g, ' ');
  return line.length <= bodySnippetCharsMax ? line : `${line.slice(0, bodySnippetCharsMax)}...`;
}
