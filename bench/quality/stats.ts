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

/** ln Γ(x), Lanczos (g 7, 9 terms): to about 1e-15 for x > 0. */
function logGamma(x: number): number {
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  x -= 1;
  let a = c[0]!;
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i]! / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

/** The regularised incomplete beta I_x(a, b), by its continued fraction (Lentz). */
function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  if (x > (a + 1) / (a + b + 2)) return 1 - incompleteBeta(1 - x, b, a);
  const front = Math.exp(Math.log(x) * a + Math.log(1 - x) * b - (logGamma(a) + logGamma(b) - logGamma(a + b))) / a;
  const tiny = 1e-300;
  let f = 1, c = 1, d = 0;
  for (let i = 0; i <= 400; i++) {
    const m = Math.floor(i / 2);
    const numerator = i === 0 ? 1 : i % 2 === 0 ? (m * (b - m) * x) / ((a + 2 * m - 1) * (a + 2 * m)) : -((a + m) * (a + b + m) * x) / ((a + 2 * m) * (a + 2 * m + 1));
    d = 1 + numerator * d;
    if (Math.abs(d) < tiny) d = tiny;
    d = 1 / d;
    c = 1 + numerator / c;
    if (Math.abs(c) < tiny) c = tiny;
    const cd = c * d;
    f *= cd;
    if (Math.abs(1 - cd) < 1e-12) break;
  }
  return front * (f - 1);
}

/** P(T <= t) for Student's t with `df` degrees of freedom (df need not be whole: Welch's). */
export function studentTCdf(t: number, df: number): number {
  const tail = 0.5 * incompleteBeta(df / (df + t * t), df / 2, 0.5);
  return t >= 0 ? 1 - tail : tail;
}

/** The p-quantile of Student's t with `df` degrees of freedom, by bisection on the CDF. */
export function studentTQuantile(p: number, df: number): number {
  let low = -1e3, high = 1e3;
  for (let i = 0; i < 200; i++) {
    const mid = (low + high) / 2;
    if (studentTCdf(mid, df) < p) low = mid;
    else high = mid;
  }
  return (low + high) / 2;
}

/**
 * The 95 % Welch t interval of mean(a) - mean(b) over per-seed values (each a training seed's
 * accuracy): what a reviewer recomputes from the seed means, beside the hierarchical bootstrap,
 * which with 3 seeds understates the spread between seeds. NaN with fewer than 2 values a side.
 */
export function welchInterval(a: readonly number[], b: readonly number[], level = 0.95): { difference: number; low: number; high: number; df: number } {
  const mean = (xs: readonly number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  const variance = (xs: readonly number[], m: number) => xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - 1);
  if (a.length < 2 || b.length < 2) return { difference: NaN, low: NaN, high: NaN, df: NaN };
  const ma = mean(a), mb = mean(b);
  const va = variance(a, ma) / a.length, vb = variance(b, mb) / b.length;
  const difference = ma - mb;
  const se = Math.sqrt(va + vb);
  if (se === 0) return { difference, low: difference, high: difference, df: Infinity };
  const df = (va + vb) ** 2 / (va ** 2 / (a.length - 1) + vb ** 2 / (b.length - 1));
  const q = studentTQuantile(1 - (1 - level) / 2, df);
  return { difference, low: difference - q * se, high: difference + q * se, df };
}
