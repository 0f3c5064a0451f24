/**
 * @module policy/eviction
 * Which sandboxes go when a function scales down (Dirigent picks uniformly at random; we pick
 * the ones whose removal wastes least).
 *
 * Order: sandboxes still being created first (cancelling a creation wastes the least work),
 * then idle ready ones (inflight 0), then busy ready ones; newest first within each group, so
 * the sandboxes that have proven themselves stay. Draining sandboxes are already leaving and are
 * never chosen. Busy victims are drained by the caller before deletion.
 * Pure and deterministic: equal creation times keep the input order. Inputs are never mutated.
 */

export interface EvictionCandidate {
  id: string;
  createdAtMs: number;
  inflight: number;
  state: 'creating' | 'ready' | 'draining';
}

/** Up to `count` victim ids, best victim first; fewer when fewer sandboxes are eligible. */
export function chooseVictims(sandboxes: readonly EvictionCandidate[], count: number): string[] {
  if (!(count > 0)) return [];
  const ranked: { candidate: EvictionCandidate; group: number; position: number }[] = [];
  for (let position = 0; position < sandboxes.length; position++) {
    const candidate = sandboxes[position];
    const group = evictionGroup(candidate);
    if (group >= 0) ranked.push({ candidate, group, position });
  }
  ranked.sort(
    (a, b) =>
      a.group - b.group ||
      b.candidate.createdAtMs - a.candidate.createdAtMs ||
      a.position - b.position,
  );
  return ranked.slice(0, Math.floor(count)).map((r) => r.candidate.id);
}

/** 0 creating, 1 idle ready, 2 busy ready, -1 not eligible (draining). */
function evictionGroup(sandbox: EvictionCandidate): number {
  switch (sandbox.state) {
    case 'creating':
      return 0;
    case 'ready':
      return sandbox.inflight > 0 ? 2 : 1;
    case 'draining':
      return -1;
  }
}
