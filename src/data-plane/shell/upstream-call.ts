/**
 * @module data-plane/shell/upstream-call
 * One proxied request to a sandbox, as an undici dispatch handler: the response head and body go
 * straight from undici's callbacks to the client's response, with backpressure (a client that
 * reads slowly pauses the upstream socket). Compared with `request()` plus `stream.pipeline`
 * this allocates no AbortController, no response Readable and no pipeline per request: on the
 * warm path those were a large share of the proxy's CPU.
 *
 * The proxy decides what an outcome means (slot release, error answers); this module only
 * reports it through `UpstreamEvents`, once per call.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';
import type { Logger } from '../../shared/logger.js';
import type { PingBudget } from '../../shared/ping-budget.js';
import { runGuarded } from '../../shared/guard.js';
import { hopByHop, type ProxyRes } from './http-util.js';

/** A response head's headers as relayed: an object from undici, a flat list (name, value, ...) from the lean upstream. */
export type RelayedHeaders = Record<string, string | string[]> | string[];

/** What the proxy does with the phases of one call; each is called at most once, `end`/`failed` last. */
export interface UpstreamEvents<H extends RelayedHeaders = Record<string, string | string[]>> {
  /** The response head arrived, hop-by-hop headers left out; false if the exchange is over (the call is then aborted). */
  head(statusCode: number, headers: H): boolean;
  /** The whole response body was handed to the client's response. */
  end(): void;
  /** The call failed before (`headSent` false) or after the response head was relayed. */
  failed(err: Error, headSent: boolean): void;
}

export class UpstreamCall implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | null = null;
  private abortReason: Error | null = null;
  private headSent = false;
  private finished = false;
  private waitingForDrain = false;

  /** `pings`: an HTTP/2 client's ping budget, credited for each part of the answer sent to it. */
  constructor(private readonly res: ProxyRes, private readonly events: UpstreamEvents, private readonly log: Logger, private readonly pings: PingBudget | null = null) {}

  /** Ends the call from our side (client gone, deadline); nothing is reported after this. */
  abort(reason: Error): void {
    if (this.finished) return;
    this.finished = true;
    this.abortReason = reason;
    this.controller?.abort(reason);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.abortReason) controller.abort(this.abortReason);
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    if (this.finished) return;
    const out: Record<string, string | string[]> = {};
    for (const k in headers) {
      const v = headers[k];
      if (v !== undefined && !hopByHop.has(k)) out[k] = v;
    }
    this.guard('proxy.upstream_head', () => {
      if (this.events.head(statusCode, out)) {
        this.headSent = true;
        this.pings?.credit();
      } else {
        this.abort(new Error('exchange over before the response head'));
      }
    });
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.finished) return;
    this.pings?.credit();
    if (this.res.write(chunk) || this.waitingForDrain) return;
    // The client reads slower than the sandbox writes: stop reading the sandbox until it drains.
    this.waitingForDrain = true;
    controller.pause();
    this.res.once('drain', () => {
      this.waitingForDrain = false;
      if (!this.finished) controller.resume();
    });
  }

  onResponseEnd(): void {
    if (this.finished) return;
    this.finished = true;
    this.guard('proxy.upstream_end', () => this.events.end());
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    if (this.finished) return;
    this.finished = true;
    this.guard('proxy.upstream_failed', () => this.events.failed(err, this.headSent));
  }

  private guard(event: string, fn: () => void): void {
    runGuarded(this.log, 'callback', event, fn);
  }
}
