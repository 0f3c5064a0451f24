/**
 * @module data-plane/async/callback-post
 * One X-Callback-Url POST, safe against DNS rebinding: the URL's host is resolved once per
 * attempt, every address it resolves to is checked against the private-address rule (unless
 * asyncCallbackAllowPrivate), and the connection is made to the checked address through a
 * lookup that only ever returns it. The URL is unchanged, so the Host header and the TLS
 * servername (SNI, certificate check) stay the caller's host name. A resolver that answers a
 * public address for the check and a private one a moment later never gets the second dialled.
 * Also the pure step after a POST: sent, retried with backoff, or abandoned.
 */
import { lookup } from 'node:dns/promises';
import { isIP, type LookupFunction } from 'node:net';
import { Agent, request } from 'undici';
import type { CallbackUpdate } from './store.js';
import type { CallbackState } from './types.js';

/** POSTs per callback in total. */
export const callbackAttemptsMax = 5;
/** Delay before the first retry; doubles per retry. */
export const callbackBackoffBaseMs = 1_000;
/** One callback POST (connect, headers, body) must be done within this. */
export const callbackTimeoutMs = 10_000;

export interface ResolvedAddress {
  address: string;
  family: number;
}

/** All addresses of a host name (the DNS lookup; tests pass a fake). */
export type ResolveFn = (hostname: string) => Promise<ResolvedAddress[]>;

export const systemResolve: ResolveFn = (hostname) => lookup(hostname, { all: true, verbatim: true });

export interface TargetRules {
  resolve: ResolveFn;
  allowPrivate: boolean;
  isPrivate: (hostOrAddress: string) => boolean;
}

export type CallbackTarget = { kind: 'ok'; address: string; family: 4 | 6 } | { kind: 'refused'; reason: string };

/** The address to dial for `url`, checked; an IP literal is taken as is (and checked). */
export async function resolveTarget(url: URL, rules: TargetRules): Promise<CallbackTarget> {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!rules.allowPrivate && rules.isPrivate(host)) return { kind: 'refused', reason: `${host} is a loopback or private address` };
  const literal = isIP(host);
  const addrs = literal !== 0 ? [{ address: host, family: literal }] : await rules.resolve(host);
  if (addrs.length === 0) return { kind: 'refused', reason: `${host} resolves to no address` };
  if (!rules.allowPrivate) {
    const bad = addrs.find((a) => rules.isPrivate(a.address));
    if (bad) return { kind: 'refused', reason: `${host} resolves to the private address ${bad.address}` };
  }
  const first = addrs[0]!;
  return { kind: 'ok', address: first.address, family: first.family === 6 ? 6 : 4 };
}

/** A lookup that answers only the checked address, whatever name it is asked for. */
export function pinnedLookup(target: { address: string; family: 4 | 6 }): LookupFunction {
  return ((_hostname: string, options: { all?: boolean } | undefined, callback: (...args: unknown[]) => void) => {
    if (options?.all) callback(null, [{ address: target.address, family: target.family }]);
    else callback(null, target.address, target.family);
  }) as unknown as LookupFunction;
}

export type PostOutcome = { kind: 'sent'; statusCode: number } | { kind: 'retry'; error: string } | { kind: 'refused'; error: string };

/** Keep-alive agents kept at most (one per callback origin and checked address). */
export const pinnedAgentsMax = 64;
/** An idle callback connection is closed after this. */
const callbackKeepAliveMs = 4_000;

/**
 * Keep-alive agents for callback POSTs, one per (origin, checked address): an agent only ever
 * dials the address it was made for, so reusing its connections keeps the rebinding guarantee
 * (each attempt still resolves and checks, and gets the agent of the address it checked). A
 * busy DP then posts its callbacks over a few open connections instead of one per POST.
 */
export class PinnedAgents {
  private readonly agents = new Map<string, Agent>();

  constructor(private readonly max = pinnedAgentsMax) {}

  get(origin: string, target: { address: string; family: 4 | 6 }): Agent {
    const key = `${origin}|${target.address}`;
    let agent = this.agents.get(key);
    if (agent) {
      this.agents.delete(key); // re-inserted last: the map's order is least recently used first
    } else {
      agent = new Agent({ connect: { lookup: pinnedLookup(target), timeout: callbackTimeoutMs }, keepAliveTimeout: callbackKeepAliveMs, pipelining: 1 });
      if (this.agents.size >= this.max) this.evictOldest();
    }
    this.agents.set(key, agent);
    return agent;
  }

  async close(): Promise<void> {
    const all = [...this.agents.values()];
    this.agents.clear();
    await Promise.all(all.map((a) => a.close().catch(() => {})));
  }

  private evictOldest(): void {
    const [key, agent] = this.agents.entries().next().value as [string, Agent];
    this.agents.delete(key);
    void agent.close().catch(() => {});
  }
}

/**
 * Resolves, checks and POSTs `body` to `url` over a connection pinned to the checked address:
 * one of `agents` (kept alive), or without them a one-off agent closed after the POST.
 */
export async function postCallback(url: URL, body: string, rules: TargetRules, timeoutMs = callbackTimeoutMs, agents?: PinnedAgents): Promise<PostOutcome> {
  let target: CallbackTarget;
  try {
    target = await resolveTarget(url, rules);
  } catch (err) {
    return { kind: 'retry', error: `resolve ${url.hostname}: ${(err as Error).message}` };
  }
  if (target.kind === 'refused') return { kind: 'refused', error: target.reason };
  // Its connections are pinned to this attempt's checked address.
  const agent = agents?.get(url.origin, target) ?? new Agent({ connect: { lookup: pinnedLookup(target), timeout: timeoutMs }, pipelining: 0 });
  try {
    const r = await request(url, {
      method: 'POST', body, headers: { 'content-type': 'application/json' }, dispatcher: agent,
      headersTimeout: timeoutMs, bodyTimeout: timeoutMs,
    });
    await r.body.dump();
    return r.statusCode >= 200 && r.statusCode < 300 ? { kind: 'sent', statusCode: r.statusCode } : { kind: 'retry', error: `status ${r.statusCode}` };
  } catch (err) {
    return { kind: 'retry', error: (err as Error).message };
  } finally {
    if (!agents) await agent.destroy().catch(() => {});
  }
}

/** The stored state after one POST: sent; abandoned when refused or out of attempts; else due again after backoff. */
export function afterCallbackPost(cb: CallbackState, outcome: PostOutcome, nowMs: number): CallbackUpdate {
  const attempts = cb.attempts + 1;
  if (outcome.kind === 'sent') return { state: 'sent', attempts, nextAtMs: nowMs };
  if (outcome.kind === 'refused' || attempts >= callbackAttemptsMax) {
    return { state: 'abandoned', attempts, nextAtMs: nowMs, lastError: outcome.error };
  }
  return { state: 'pending', attempts, nextAtMs: nowMs + callbackBackoffBaseMs * 2 ** (attempts - 1), lastError: outcome.error };
}
