/**
 * @module worker/runtime/runtime
 * The SandboxRuntime port (DESIGN §7): create, delete and list the sandboxes of one worker.
 * Implementations: `process-runtime.ts` (real processes) and `emulated-runtime.ts` (no process,
 * one shared HTTP responder). Every implementation runs `runtime.contract.ts`.
 *
 * Contract, in words:
 * - create() resolves when the sandbox answers on `address` or when creation failed; expected
 *   failures (bad command, timeout, crash during start) are `{ ok: false, reason }`, never thrown.
 * - delete() is idempotent and concurrent-safe; it resolves only once every process of the
 *   sandbox is gone and its address is free for a new sandbox.
 * - onExit listeners hear about unexpected exits only (crashes), never about delete() or close().
 * - list() shows ready sandboxes only; a sandbox being created is the caller's pending create().
 * Must not import anything outside `api/`, `config/` and `shared/`.
 */
import type { FunctionSpec } from '../../api/types.js';

export interface SandboxSpec {
  sandboxId: string;
  fn: FunctionSpec;
}

export interface RuntimeSandbox {
  sandboxId: string;
  function: string;
  /** host:port the data plane proxies to. */
  address: string;
  /** Wall clock, for records shown to people. */
  createdAtMs: number;
  pid?: number;
}

export type CreateResult =
  | { ok: true; sandbox: RuntimeSandbox; startMs: number; readinessMs: number; totalMs: number }
  | { ok: false; reason: string };

export type ExitListener = (sandboxId: string, reason: string) => void;

export interface SandboxRuntime {
  readonly name: 'process' | 'emulated' | 'oci' | 'containerd';
  /** Resolves when ready (or failed); never rejects for expected failures. */
  create(spec: SandboxSpec): Promise<CreateResult>;
  /** Idempotent; resolves only when every process of the sandbox is gone and its port is free. */
  delete(sandboxId: string): Promise<void>;
  list(): RuntimeSandbox[];
  /** Unexpected exits (crash) only, never for delete(). */
  onExit(listener: ExitListener): void;
  /** Deletes everything; later creates fail with reason "runtime closed". */
  close(): Promise<void>;
}

/** Sandbox ids become file names under the state dir, so they are restricted to a safe set. */
const sandboxIdPattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function isValidSandboxId(sandboxId: string): boolean {
  return sandboxIdPattern.test(sandboxId);
}
