/**
 * @module worker/runtime/containerd/events
 * One Events.Subscribe stream per runtime, filtered to task exits and OOM kills in our
 * namespace. A broken stream (containerd restarted) is re-opened after a pause; events that fell
 * into the gap are lost, which the runtime tolerates (teardown always asks the task's state).
 */
import { fromBinary } from '@bufbuild/protobuf';
import { TaskExitSchema, TaskOOMSchema } from '../../../gen/containerd/events/task_pb.js';
import { Events, type Envelope } from '../../../gen/containerd/services/events/v1/events_pb.js';
import type { Logger } from '../../../shared/logger.js';
import type { ContainerdClient } from './client.js';

/** Pause before re-subscribing after the stream broke. */
const resubscribePauseMs = 200;

export const exitTopic = '/tasks/exit';
export const oomTopic = '/tasks/oom';

export interface TaskEventHandlers {
  /** The init process of a container exited (exec'd processes are ignored). */
  exit(containerId: string, pid: number, exitStatus: number): void;
  oom(containerId: string): void;
}

/** containerd filter expressions: the list is OR-ed, commas inside one filter are AND-ed. */
export function eventFilters(namespace: string): string[] {
  return [exitTopic, oomTopic].map((topic) => `namespace==${namespace},topic==${JSON.stringify(topic)}`);
}

/** Routes one envelope to the handlers; unknown or malformed events are dropped. */
export function dispatchEnvelope(envelope: Envelope, handlers: TaskEventHandlers): void {
  const value = envelope.event?.value;
  if (value === undefined) return;
  if (envelope.topic === exitTopic) {
    const exit = fromBinary(TaskExitSchema, value);
    if (exit.id === exit.containerId) handlers.exit(exit.containerId, exit.pid, exit.exitStatus);
  } else if (envelope.topic === oomTopic) {
    handlers.oom(fromBinary(TaskOOMSchema, value).containerId);
  }
}

export interface TaskEventSubscription {
  close(): void;
}

export function subscribeTaskEvents(
  client: ContainerdClient,
  handlers: TaskEventHandlers,
  log: Logger,
): TaskEventSubscription {
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let stream: ReturnType<typeof client.serverStream<typeof Events.method.subscribe.input, typeof Events.method.subscribe.output>> | undefined;
  const open = (): void => {
    const current = client.serverStream(Events.method.subscribe, { filters: eventFilters(client.namespace) });
    stream = current;
    current.on('data', (envelope: Envelope) => {
      try {
        dispatchEnvelope(envelope, handlers);
      } catch (err) {
        log.warn('containerd.event_bad', { topic: envelope.topic, err: (err as Error).message });
      }
    });
    current.on('error', (err: Error) => {
      if (closed) return;
      log.warn('containerd.events_lost', { err: err.message });
    });
    current.on('status', () => {
      if (closed || stream !== current) return;
      timer = setTimeout(open, resubscribePauseMs);
    });
  };
  open();
  return {
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      stream?.cancel();
    },
  };
}
