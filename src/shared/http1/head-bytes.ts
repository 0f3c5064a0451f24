/**
 * @module shared/http1/head-bytes
 * An HTTP/1.1 head written byte by byte (Latin-1, as a socket writes a head with 'latin1') into a
 * buffer its owner reuses, then copied once into the buffer that leaves in the socket write,
 * behind which the body's bytes follow. A head built as a string instead (a `+=` or a join per
 * piece) left a chain of short-lived strings, or a join's scratch list, of about a kilobyte per
 * head: the DP's largest allocation site at 4,000 cold starts/s, and the emulator's second
 * (BENCHMARKS.md, "Fewer bytes per cold start").
 *
 * One per connection: a connection answers one request at a time, and an answer's head is copied
 * out by its first write, before the next answer is built.
 */

/** Room for a usual head; a longer one grows the buffer (to twice what it needs). */
const headBytesInitial = 512;

export class HeadBytes {
  private buf: Buffer;
  /** Bytes of the head written so far. */
  length = 0;

  constructor(capacity = headBytesInitial) {
    this.buf = Buffer.allocUnsafe(capacity);
  }

  reset(): void {
    this.length = 0;
  }

  /** Appends `text` as Latin-1 (a character's low byte, as Buffer's 'latin1' encoding writes it). */
  put(text: string): void {
    const n = text.length;
    let at = this.length;
    if (at + n > this.buf.length) this.grow(at + n);
    const buf = this.buf;
    for (let i = 0; i < n; i += 1) buf[at++] = text.charCodeAt(i);
    this.length = at;
  }

  /** A decimal number (a status code, a length): no string for it. */
  putInt(value: number): void {
    if (!(Number.isInteger(value) && value >= 0 && value < 1e15)) {
      this.put(String(value));
      return;
    }
    let digits = 1;
    for (let v = value; v >= 10; v = Math.floor(v / 10)) digits += 1;
    if (this.length + digits > this.buf.length) this.grow(this.length + digits);
    let at = this.length + digits;
    this.length = at;
    let v = value;
    do {
      this.buf[--at] = 0x30 + (v % 10);
      v = Math.floor(v / 10);
    } while (v > 0);
  }

  /** The head alone, in a buffer of its own. */
  take(): Buffer {
    return this.into(Buffer.allocUnsafe(this.length));
  }

  /** The head followed by `body`, in one buffer. */
  takeWith(body: Uint8Array): Buffer {
    const out = this.into(Buffer.allocUnsafe(this.length + body.length));
    out.set(body, this.length);
    return out;
  }

  /** The head followed by `text` in UTF-8, in one buffer. */
  takeWithText(text: string): Buffer {
    const out = this.into(Buffer.allocUnsafe(this.length + Buffer.byteLength(text)));
    out.write(text, this.length, 'utf8');
    return out;
  }

  private into(out: Buffer): Buffer {
    const buf = this.buf;
    for (let i = 0; i < this.length; i += 1) out[i] = buf[i]!;
    return out;
  }

  private grow(needed: number): void {
    const next = Buffer.allocUnsafe(needed * 2);
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }
}
