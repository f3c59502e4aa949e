/**
 * Several engine replicas (one per device) behind one engine: each request goes to a replica,
 * and every request on the same image goes to the same one while it lives, so the image's prefix is
 * encoded and cached once (the three calls of an image share it). A new image goes to the replica
 * with the fewest requests in flight.
 *
 * When a replica fails (its device is lost or out of memory: DEVICE_FAILED, DECODE_FAILED,
 * IMAGE_ENCODE_FAILED) and others are alive, it is closed; the request that failed and every other
 * request it held in flight are sent again to the live replicas, and `onFailure` says so. The last
 * replica's failure is the caller's error, as with one engine.
 */
import { SrfError, isSrfError, type SrfErrorCode } from '../errors.js';
import { checkLoraScales } from './option-checks.js';
import { emptyEngineStats, sumEngineStats, type EngineStats } from './native.js';
import type { GenerateRequest, GenerateResult, ImageInput, PreparedImage, ReplicaFailure, ReplicaStats, VisionEngine, VisionModelInfo } from './types.js';

/** Errors that say the replica's device failed, not the request. */
const DEVICE_FAILURES: SrfErrorCode[] = ['DEVICE_FAILED', 'DECODE_FAILED', 'IMAGE_ENCODE_FAILED'];

/** Test hook: `SRF_TEST_REPLICA_FAIL=R:N[,R:N]` fails replica R (DEVICE_FAILED) when its N-th request arrives. */
function failureHook(): Map<number, number> {
  const hooks = new Map<number, number>();
  for (const part of (process.env.SRF_TEST_REPLICA_FAIL ?? '').split(',')) {
    const match = /^(\d+):(\d+)$/.exec(part.trim());
    if (match) hooks.set(Number(match[1]), Number(match[2]));
  }
  return hooks;
}

interface Replica {
  index: number;
  model: VisionEngine;
  device: string;
  inFlight: number;
  requests: number;
  failed: SrfError | undefined;
  lastStats: EngineStats | undefined;
}

/** Image hashes remembered for routing; past this the oldest are forgotten (they are done by then). */
const STICKY_LIMIT = 8192;

export class ReplicaRouter implements VisionEngine {
  /** The first replica's, with every replica's device; parallel, contextSize etc. are per replica. */
  readonly info: VisionModelInfo;
  readonly #replicas: Replica[];
  readonly #sticky = new Map<string, Replica>();
  readonly #onFailure: (failure: ReplicaFailure) => void;
  readonly #hook = failureHook();
  #closing: Promise<void> | undefined;
  #loraScales: number[];

  constructor(engines: VisionEngine[], devices: string[], onFailure: (failure: ReplicaFailure) => void = () => {}) {
    const first = engines[0];
    if (!first) throw new SrfError('INVALID_ARGUMENT', 'a replica router needs at least one engine');
    this.#replicas = engines.map((model, index) => ({ index, model, device: devices[index] ?? `replica ${index}`, inFlight: 0, requests: 0, failed: undefined, lastStats: undefined }));
    this.#onFailure = onFailure;
    this.info = { ...first.info, devices: this.#replicas.map((r) => r.device) };
    this.#loraScales = [...first.loraScales];
  }

  get closed(): boolean {
    return this.#closing !== undefined;
  }

  get loraScales(): readonly number[] {
    return this.#loraScales;
  }

  prepareImage(input: ImageInput): Promise<PreparedImage> {
    return (this.#replicas[0] as Replica).model.prepareImage(input);
  }

  get live(): number {
    return this.#replicas.filter((r) => !r.failed).length;
  }

  async generate(request: GenerateRequest): Promise<GenerateResult> {
    if (this.closed) throw new SrfError('CLOSED', 'the model is closed');
    // Prepared once here: its hash routes the request, and a retry does not decode the file again.
    const image = await this.prepareImage(request.image);
    for (;;) {
      const replica = this.#pick(image.hash);
      replica.inFlight++;
      replica.requests++;
      try {
        if (this.#hook.get(replica.index) === replica.requests) {
          throw new SrfError('DEVICE_FAILED', `replica ${replica.index} (${replica.device}) failed on purpose (SRF_TEST_REPLICA_FAIL)`);
        }
        return await replica.model.generate({ ...request, image });
      } catch (error) {
        if (request.signal?.aborted) throw error;
        if (replica.failed) continue; // closed under this request: it goes to another replica
        if (isSrfError(error) && DEVICE_FAILURES.includes(error.code) && this.live > 1) {
          this.#fail(replica, error);
          continue;
        }
        throw error;
      } finally {
        replica.inFlight--;
      }
    }
  }

  async setLoraScales(scales: number[]): Promise<void> {
    if (this.closed) throw new SrfError('CLOSED', 'the model is closed');
    const checked = checkLoraScales(scales, this.info.loras);
    await Promise.all(this.#replicas.filter((r) => !r.failed).map((r) => r.model.setLoraScales(checked)));
    this.#loraScales = checked;
  }

  /** Per replica; a failed one keeps the counters it had when it failed. */
  replicaStats(): ReplicaStats[] {
    return this.#replicas.map((r) => {
      const stats = r.failed ? (r.lastStats ?? emptyEngineStats()) : r.model.stats();
      return { device: r.device, down: r.failed !== undefined, engine: stats, requests: r.requests };
    });
  }

  /** The replicas' counters added up. */
  stats(): EngineStats {
    return sumEngineStats(this.replicaStats().map((s) => s.engine));
  }

  close(): Promise<void> {
    this.#closing ??= Promise.all(this.#replicas.map((r) => r.model.close())).then(() => undefined);
    return this.#closing;
  }

  #pick(hash: string): Replica {
    const known = this.#sticky.get(hash);
    if (known && !known.failed) {
      this.#sticky.delete(hash);
      this.#sticky.set(hash, known);
      return known;
    }
    let best: Replica | undefined;
    for (const r of this.#replicas) if (!r.failed && (!best || r.inFlight < best.inFlight)) best = r;
    if (!best) throw this.#replicas.find((r) => r.failed)?.failed ?? new SrfError('CLOSED', 'no engine replica is running');
    this.#sticky.set(hash, best);
    if (this.#sticky.size > STICKY_LIMIT) this.#sticky.delete(this.#sticky.keys().next().value as string);
    return best;
  }

  #fail(replica: Replica, error: SrfError): void {
    try {
      replica.lastStats = replica.model.stats();
    } catch {
      // a lost device may not answer
    }
    replica.failed = error;
    this.#onFailure({ replica: replica.index, device: replica.device, error, handedBack: replica.inFlight - 1, remaining: this.live });
    // Its pending requests reject with CLOSED and, seeing it failed, go to the other replicas.
    replica.model.close().catch(() => {});
  }
}
