/** Accuracy with a percentile bootstrap interval: seeded, so a table is the same on every run. */
import { createRandom } from '../../lib/srf/random.js';

export interface Accuracy {
  n: number;
  right: number;
  /** right / n (NaN when n = 0). */
  accuracy: number;
  /** 95 % percentile bootstrap interval of the accuracy ([NaN, NaN] when n = 0). */
  low: number;
  high: number;
}

export const BOOTSTRAP_RESAMPLES = 2000;

/**
 * For 0/1 outcomes a resample's accuracy is Binomial(n, p̂) / n; drawing n uniform indices is the
 * same thing and needs no binomial sampler. 2000 resamples give the 2.5/97.5 % percentiles to
 * about a tenth of a point at n = 500.
 */
export function accuracyWithInterval(outcomes: readonly boolean[], seed = 1, resamples = BOOTSTRAP_RESAMPLES): Accuracy {
  const n = outcomes.length;
  const right = outcomes.filter(Boolean).length;
  if (n === 0) return { n, right, accuracy: NaN, low: NaN, high: NaN };
  const random = createRandom(seed);
  const means = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    let hits = 0;
    for (let i = 0; i < n; i++) if (outcomes[Math.floor(random() * n)]) hits++;
    means[r] = hits / n;
  }
  means.sort();
  return { n, right, accuracy: right / n, low: means[Math.floor(0.025 * resamples)]!, high: means[Math.ceil(0.975 * resamples) - 1]! };
}

/**
 * Interval of a difference of two accuracies (a - b) over the same items, paired: each resample draws
 * item indices once and recomputes both (a subset's membership travels with its item).
 */
export function pairedDifference(
  right: readonly boolean[],
  inA: readonly boolean[],
  inB: readonly boolean[],
  seed = 1,
  resamples = BOOTSTRAP_RESAMPLES,
): { difference: number; low: number; high: number } {
  const n = right.length;
  const acc = (pick: (i: number) => number) => {
    let hitsA = 0, nA = 0, hitsB = 0, nB = 0;
    for (let k = 0; k < n; k++) {
      const i = pick(k);
      if (inA[i]) { nA++; if (right[i]) hitsA++; }
      if (inB[i]) { nB++; if (right[i]) hitsB++; }
    }
    return (nA ? hitsA / nA : NaN) - (nB ? hitsB / nB : NaN);
  };
  const difference = acc((k) => k);
  const random = createRandom(seed);
  const diffs: number[] = [];
  for (let r = 0; r < resamples; r++) {
    const d = acc(() => Math.floor(random() * n));
    if (!Number.isNaN(d)) diffs.push(d); // a resample that left a set empty says nothing about the difference
  }
  if (diffs.length === 0) return { difference, low: NaN, high: NaN };
  diffs.sort((x, y) => x - y);
  return { difference, low: diffs[Math.floor(0.025 * diffs.length)]!, high: diffs[Math.ceil(0.975 * diffs.length) - 1]! };
}

export function percent(x: number, digits = 1): string {
  return Number.isNaN(x) ? '–' : `${(100 * x).toFixed(digits)}`;
}

/** "72.4 % [68.1, 76.5] (n 500)" */
export function formatAccuracy(a: Accuracy): string {
  return a.n === 0 ? '– (n 0)' : `${percent(a.accuracy)} % [${percent(a.low)}, ${percent(a.high)}] (n ${a.n})`;
}

/** Interval of accuracy(a) - accuracy(b) for two models answering the same items (paired bootstrap). */
export function pairedModelDifference(a: readonly boolean[], b: readonly boolean[], seed = 1, resamples = BOOTSTRAP_RESAMPLES): { difference: number; low: number; high: number } {
  const n = a.length;
  if (n === 0 || b.length !== n) return { difference: NaN, low: NaN, high: NaN };
  const delta = a.map((x, i) => Number(x) - Number(b[i]));
  const difference = delta.reduce((s, d) => s + d, 0) / n;
  const random = createRandom(seed);
  const diffs = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += delta[Math.floor(random() * n)]!;
    diffs[r] = sum / n;
  }
  diffs.sort();
  return { difference, low: diffs[Math.floor(0.025 * resamples)]!, high: diffs[Math.ceil(0.975 * resamples) - 1]! };
}
