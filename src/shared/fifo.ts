/**
 * @module shared/fifo
 * An array-backed FIFO with O(1) amortized push/shift: a head index instead of Array.shift(),
 * compacted when the dead prefix is at least half the array.
 *
 *   [ x x x | a b c d ]      head = 3; shift() returns a and advances head
 */
export class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  peek(): T | undefined {
    return this.items[this.head];
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head += 1;
    if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  *drain(): Generator<T> {
    while (this.length > 0) yield this.shift()!;
  }
}
