/**
 * @module shared/linked-list
 * A doubly linked list whose `push` returns the node, so a holder can remove its entry in O(1)
 * (a cancelled queued request leaves its queue at once instead of waiting to be skipped at the
 * head: memory stays bounded by the number of live entries, not by arrivals x wait time).
 *
 *   head ⇄ a ⇄ b ⇄ c ⇄ tail        remove(b): a ⇄ c, b.list = null
 */
export interface ListNode<T> {
  readonly value: T;
  prev: ListNode<T> | null;
  next: ListNode<T> | null;
  /** The list holding the node; null once removed (remove is then a no-op). */
  list: LinkedList<T> | null;
}

export class LinkedList<T> {
  private head: ListNode<T> | null = null;
  private tail: ListNode<T> | null = null;
  private size = 0;

  get length(): number {
    return this.size;
  }

  push(value: T): ListNode<T> {
    const node: ListNode<T> = { value, prev: this.tail, next: null, list: this };
    if (this.tail) this.tail.next = node;
    else this.head = node;
    this.tail = node;
    this.size += 1;
    return node;
  }

  /** At the head. */
  unshift(value: T): ListNode<T> {
    return this.linkBefore(this.head, value);
  }

  /**
   * Before the first value `goesBefore` holds for (a walk from the head: O(position)), or at the
   * tail: keeps a list sorted by a key when a value comes back late.
   */
  insertBeforeFirst(value: T, goesBefore: (existing: T) => boolean): ListNode<T> {
    let at = this.head;
    while (at && !goesBefore(at.value)) at = at.next;
    return at ? this.linkBefore(at, value) : this.push(value);
  }

  peek(): T | undefined {
    return this.head?.value;
  }

  shift(): T | undefined {
    const node = this.head;
    if (!node) return undefined;
    this.remove(node);
    return node.value;
  }

  /** O(1); a node of another list or one already removed is left alone. */
  remove(node: ListNode<T>): void {
    if (node.list !== this) return;
    if (node.prev) node.prev.next = node.next;
    else this.head = node.next;
    if (node.next) node.next.prev = node.prev;
    else this.tail = node.prev;
    node.prev = null;
    node.next = null;
    node.list = null;
    this.size -= 1;
  }

  private linkBefore(at: ListNode<T> | null, value: T): ListNode<T> {
    if (!at) return this.push(value);
    const node: ListNode<T> = { value, prev: at.prev, next: at, list: this };
    if (at.prev) at.prev.next = node;
    else this.head = node;
    at.prev = node;
    this.size += 1;
    return node;
  }

  /** Removes and yields every value from the head; safe against removals while iterating. */
  *drain(): Generator<T> {
    while (this.head) yield this.shift() as T;
  }
}
