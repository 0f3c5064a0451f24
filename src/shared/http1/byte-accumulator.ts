/**
 * @module shared/http1/byte-accumulator
 * Bytes of an unfinished message (a request or response head, a chunk-size line) gathered from
 * socket reads. Appending copies into a buffer that doubles when full, so a peer sending one byte
 * per packet costs O(n) copies, not the O(n²) of concatenating every read; `scanFrom` tells the
 * reader where its search for a delimiter can resume instead of rescanning from the start.
 */
export class ByteAccumulator {
  private store: Buffer | null = null;
  /** False while `store` is a caller's chunk (never written into). */
  private owned = false;
  private length = 0;
  /** Bytes already searched for a delimiter of `delimiterBytes` (the next search starts near here). */
  private searched = 0;

  constructor(private readonly delimiterBytes: number) {}

  /** `chunk` appended to what is held; the returned view is valid until the next append or take. */
  append(chunk: Buffer): Buffer {
    if (this.store === null) {
      // The first read stands alone: no copy unless a second one comes.
      this.store = chunk;
      this.length = chunk.length;
      return chunk;
    }
    const need = this.length + chunk.length;
    if (need > this.store.length || !this.owned) {
      const grown = Buffer.allocUnsafe(Math.max(need, 2 * this.length, 1_024));
      this.store.copy(grown, 0, 0, this.length);
      this.store = grown;
      this.owned = true;
    }
    chunk.copy(this.store, this.length);
    this.length = need;
    return this.store.subarray(0, need);
  }

  /** Where a search for the delimiter in the held bytes may start (what was searched, less an overlap). */
  get scanFrom(): number {
    return Math.max(0, this.searched - (this.delimiterBytes - 1));
  }

  /** The held bytes were searched up to here without finding the delimiter. */
  searchedTo(n: number): void {
    this.searched = n;
  }

  get size(): number {
    return this.length;
  }

  /**
   * The caller's last chunk is about to be overwritten (a socket that reads into one reused
   * buffer): a held chunk that is still the caller's is copied now.
   */
  detach(): void {
    if (this.store === null || this.owned) return;
    this.store = Buffer.from(this.store.subarray(0, this.length));
    this.owned = true;
  }

  /** Lets go of the bytes (they were consumed). */
  clear(): void {
    this.store = null;
    this.length = 0;
    this.searched = 0;
    this.owned = false;
  }
}
