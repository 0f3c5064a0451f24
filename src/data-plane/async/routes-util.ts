/**
 * @module data-plane/async/routes-util
 * Small shared constants of the async HTTP surface.
 */
import type { AsyncStatus } from './types.js';

export const asyncStatuses: readonly string[] = ['queued', 'running', 'succeeded', 'failed', 'dead'] satisfies AsyncStatus[];
