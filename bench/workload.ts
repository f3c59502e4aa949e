/**
 * The "triplet" workload of issue 3, the same for every peer: per image, I->QA (96 tokens), then
 * IA->Q (32 tokens) and IQ->A (64 tokens) sent together once I->QA is back. Lengths are fixed
 * (EOS ignored) and decoding is greedy. The follow-ups use a fixed answer and question: the
 * random-weight model's I->QA reply is noise, and all peers must get the same prompts.
 */
import { DEFAULT_TEMPLATES } from '../lib/srf/prompts.js';
import { llavaPromptParts } from '../lib/engine/llava-prompt.js';

export type TaskName = 'iToQa' | 'iaToQ' | 'iqToA';

export interface Task {
  name: TaskName;
  /** User text after the image (the `{prompt}` of `{system} USER: <image>\n{prompt} ASSISTANT:`). */
  prompt: string;
  maxTokens: number;
}

/** Stand-ins for the I->QA output, used by every peer's follow-up requests. */
export const DUMMY_QUESTION = 'What is the man on the left holding in his right hand?';
export const DUMMY_ANSWER = 'He is holding a red umbrella with a wooden handle.';

export const TASKS: Readonly<Record<TaskName, Task>> = Object.freeze({
  iToQa: { name: 'iToQa', prompt: DEFAULT_TEMPLATES.iToQaInstruction, maxTokens: 96 },
  iaToQ: { name: 'iaToQ', prompt: DEFAULT_TEMPLATES.iaToQInstruction(DUMMY_ANSWER), maxTokens: 32 },
  iqToA: { name: 'iqToA', prompt: DEFAULT_TEMPLATES.iqToAInstruction(DUMMY_QUESTION), maxTokens: 64 },
});

export const GENERATED_PER_TRIPLET = TASKS.iToQa.maxTokens + TASKS.iaToQ.maxTokens + TASKS.iqToA.maxTokens;

/** The whole LLaVA-1.5 prompt with `marker` where the image goes (for the llama.cpp tools). */
export function fullPrompt(task: Task, marker: string): string {
  const { beforeImage, afterImage } = llavaPromptParts(task.prompt);
  return `${beforeImage}${marker}${afterImage}`;
}

/** What one request reports back, whoever served it. */
export interface RequestResult {
  /** Prompt tokens the model evaluated for this request (not counting ones reused from a cache). */
  promptEvaluated: number;
  generated: number;
}

/**
 * A counting semaphore whose waiters are served by priority (lower first), FIFO within a priority.
 * Follow-up requests (priority 0) go before new images' I->QA (priority 1), so an image's prefix is
 * still cached when its follow-ups arrive, for every peer alike.
 */
export class PrioritySemaphore {
  #free: number;
  #waiting: { priority: number; seq: number; wake: () => void }[] = [];
  #seq = 0;
  constructor(permits: number) {
    this.#free = permits;
  }
  acquire(priority: number): Promise<void> {
    if (this.#free > 0 && this.#waiting.length === 0) {
      this.#free--;
      return Promise.resolve();
    }
    return new Promise((wake) => {
      this.#waiting.push({ priority, seq: this.#seq++, wake });
      this.#waiting.sort((a, b) => a.priority - b.priority || a.seq - b.seq);
    });
  }
  release(): void {
    const next = this.#waiting.shift();
    if (next) next.wake();
    else this.#free++;
  }
  /** `work` once a permit is free, the permit given back however it ends. */
  async run<T>(priority: number, work: () => Promise<T>): Promise<T> {
    await this.acquire(priority);
    try {
      return await work();
    } finally {
      this.release();
    }
  }
}

export interface TripletRun {
  seconds: number;
  triplets: number;
  requests: number;
  promptEvaluated: number;
  generated: number;
  /** Seconds from an image's first request to its last reply, per image. */
  latencies: number[];
}

/**
 * Runs the triplet workload over `images` with at most `maxInFlight` requests outstanding:
 * an image's I->QA first, then its two follow-ups concurrently; follow-ups take precedence over
 * starting new images. `send` serves one request (the peer under test).
 */
export async function runTriplets<I>(
  images: I[],
  maxInFlight: number,
  send: (image: I, task: Task) => Promise<RequestResult>,
): Promise<TripletRun> {
  const gate = new PrioritySemaphore(Math.max(1, maxInFlight));
  const totals = { requests: 0, promptEvaluated: 0, generated: 0 };
  const latencies: number[] = [];
  const count = (r: RequestResult) => {
    totals.requests++;
    totals.promptEvaluated += r.promptEvaluated;
    totals.generated += r.generated;
  };
  const started = process.hrtime.bigint();
  await Promise.all(
    images.map(async (image) => {
      await gate.acquire(1);
      const t0 = process.hrtime.bigint();
      let first: RequestResult;
      try {
        first = await send(image, TASKS.iToQa);
      } catch (err) {
        gate.release();
        throw err;
      }
      count(first);
      // The I->QA permit passes straight to the first follow-up; the second waits with priority.
      const followUp = async (task: Task, permitHeld: boolean) => {
        if (!permitHeld) await gate.acquire(0);
        try {
          count(await send(image, task));
        } finally {
          gate.release();
        }
      };
      await Promise.all([followUp(TASKS.iaToQ, true), followUp(TASKS.iqToA, false)]);
      latencies.push(Number(process.hrtime.bigint() - t0) / 1e9);
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { seconds, triplets: images.length, ...totals, latencies };
}
