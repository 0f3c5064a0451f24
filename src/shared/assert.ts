/**
 * @module shared/assert
 * Invariant checks. A failed assertion is a bug, not an expected outcome: it throws and, in a
 * component, crashes it; in the simulator it fails the seed.
 */

export class AssertionError extends Error {
  override name = 'AssertionError';
}

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionError(message);
}

export function unreachable(value: never, what: string): never {
  throw new AssertionError(`unreachable ${what}: ${JSON.stringify(value)}`);
}
