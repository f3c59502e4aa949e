/**
 * Several engine replicas (one per device) behind one engine: each request goes to a replica,
 * and every request on the same image goes to the same one while it lives, so the image's prefix is
 * encoded and cached once (the three calls of an image share it). A new image goes to the replica
 * with the fewest requests in flight.
 *
 * Only a device-level failure takes a replica down: DEVICE_FAILED, which the native engine reports
 * once its decodes or image encodes fail several times in a row (native/engine.h). The replica is
 * closed; the request that failed and every other request it held in flight go to the live
 * replicas, and `onFailure` says so. A request's own error (a bad image, a context too small) stays
 * that request's; a failed decode or encode (DECODE_FAILED, IMAGE_ENCODE_FAILED) is tried once more,
 * on another live replica where there is one, as it may be the device's: a device that is going fails
 * the second try with DEVICE_FAILED. When no replica is left, every request
 * fails with DEVICE_FAILED, which a pipeline treats as "not done" (the images run again on resume).
 */
import { SrfError, isSrfError, type SrfErrorCode } from '../errors.js';
import { checkLoraScales } from './option-checks.js';
import { emptyEngineStats, sumEngineStats, type EngineStats } from './native.js';
import type { GenerateRequest, GenerateResult, ImageInput, PreparedImage, ReplicaFailure, ReplicaStats, VisionEngine, VisionModelInfo } from './types.js';

/** Failures that may be the device's rather than the request's: tried once more, on another replica where one lives. */
const TRIED_AGAIN: SrfErrorCode[] = ['DECODE_FAILED', 'IMAGE_ENCODE_FAILED'];

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
    let triedOn: Replica | undefined;
    for (;;) {
      const replica = this.#pick(image.hash, triedOn);
      replica.inFlight++;
      replica.requests++;
      try {
        return await replica.model.generate({ ...request, image });
      } catch (error) {
        if (request.signal?.aborted) throw error;
        if (replica.failed) continue; // closed under this request: it goes to another replica
        if (isSrfError(error, 'DEVICE_FAILED')) {
          this.#fail(replica, error);
          continue;
        }
        if (isSrfError(error) && TRIED_AGAIN.includes(error.code) && !triedOn) {
          triedOn = replica;
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

  /** The image's replica while it lives, else the least busy live one (not `avoid`, where another is live). */
  #pick(hash: string, avoid: Replica | undefined): Replica {
    const known = this.#sticky.get(hash);
    if (known && !known.failed && known !== avoid) {
      this.#sticky.delete(hash);
      this.#sticky.set(hash, known);
      return known;
    }
    let best: Replica | undefined;
    for (const r of this.#replicas) if (!r.failed && r !== avoid && (!best || r.inFlight < best.inFlight)) best = r;
    best ??= avoid && !avoid.failed ? avoid : undefined;
    if (!best) throw this.#allDown();
    this.#sticky.set(hash, best);
    if (this.#sticky.size > STICKY_LIMIT) this.#sticky.delete(this.#sticky.keys().next().value as string);
    return best;
  }

  #allDown(): SrfError {
    const why = this.#replicas.map((r) => `replica ${r.index} (${r.device}): ${r.failed?.message ?? 'closed'}`).join('; ');
    return new SrfError('DEVICE_FAILED', `every engine replica's device failed (${why}); what was not done is not done: run the same command again to resume`);
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
