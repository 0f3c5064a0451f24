/**
 * @module cli/replies
 * Shapes of the management API's answers, checked before the CLI prints them, so a version
 * mismatch shows as one "unexpected answer ... at workers.0.capacity" line instead of a crash
 * or a table of "undefined". Only what the CLI prints is required; extra fields pass through.
 */
import { z } from 'zod';

const resources = z.object({ cpuMillis: z.number(), memoryMiB: z.number() }).passthrough();

const functionSpec = z.object({
  name: z.string(),
  image: z.string(),
  command: z.array(z.string()),
  workingDir: z.string(),
  port: z.number(),
  env: z.record(z.string()),
  egress: z.boolean().optional(),
  namespace: z.string().optional(),
  auth: z.string().optional(),
  resources,
  concurrency: z.number(),
  timeoutMs: z.number(),
  scaling: z.record(z.number()),
  async: z.object({ retryOn4xx: z.boolean().optional(), attemptsMax: z.number().optional(), eventAgeMsMax: z.number().optional() })
    .passthrough().optional(),
}).passthrough();

const functionStatus = z.object({
  desired: z.number(),
  ready: z.number(),
  creating: z.number(),
  queueDepth: z.number(),
  draining: z.number().optional(),
  inflight: z.number().optional(),
  panicking: z.boolean().optional(),
  lastScaleReason: z.string().optional(),
  /** Why placement cannot run the function (e.g. "no worker supports runtime oci"). */
  unschedulableReason: z.string().optional(),
}).passthrough();

export const functionReply = z.object({ function: functionSpec, status: functionStatus });
export type FunctionReply = z.infer<typeof functionReply>;

export const functionListReply = z.object({ functions: z.array(functionReply) });

export const clusterReply = z.object({
  leader: z.object({ id: z.string(), apiAddress: z.string() }).passthrough().nullable(),
  workers: z.array(z.object({
    id: z.string(),
    address: z.string(),
    schedulable: z.boolean(),
    capacity: resources,
    allocated: resources,
    sandboxes: z.number(),
    lastHeartbeatAgoMs: z.number(),
  }).passthrough()),
  dataPlanes: z.array(z.object({
    id: z.string(),
    proxyAddress: z.string(),
    connected: z.boolean(),
  }).passthrough()),
  /** Absent from a CP older than the field. */
  placementRefusals: z.object({ total: z.number().int().nonnegative(), lastReason: z.string() }).optional(),
});
export type ClusterReply = z.infer<typeof clusterReply>;

/** For `--json`: the answer as sent, extra fields included, without a shape check. */
export const rawJson = z.unknown();
