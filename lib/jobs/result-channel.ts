/** A bounded hand-over from the pipeline to an async iterator: the writer waits while the reader is behind. */
export class ResultChannel<T> {
  #items: T[] = [];
  #capacity: number;
  #closed = false;
  #error: unknown;
  #detached = false;
  #readers: (() => void)[] = [];
  #writers: (() => void)[] = [];

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  async push(item: T): Promise<void> {
    if (this.#detached) return;
    this.#items.push(item);
    this.#wake(this.#readers);
    while (this.#items.length > this.#capacity && !this.#detached) await new Promise<void>((resolve) => this.#writers.push(resolve));
  }

  close(error?: unknown): void {
    this.#closed = true;
    this.#error = error;
    this.#wake(this.#readers);
  }

  /** The reader went away: drop items from now on. */
  detach(): void {
    this.#detached = true;
    this.#items = [];
    this.#wake(this.#writers);
  }

  async next(): Promise<IteratorResult<T>> {
    for (;;) {
      if (this.#items.length > 0) {
        const value = this.#items.shift() as T;
        this.#wake(this.#writers);
        return { done: false, value };
      }
      if (this.#closed) {
        if (this.#error) throw this.#error;
        return { done: true, value: undefined };
      }
      await new Promise<void>((resolve) => this.#readers.push(resolve));
    }
  }

  #wake(list: (() => void)[]): void {
    for (const resolve of list.splice(0)) resolve();
  }
}

