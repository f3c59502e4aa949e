/**
 * Seeded random weights for fixture models: fast enough to produce a 13 GB F16 model at disk
 * speed. Each tensor gets its own stream (seed + tensor name), so a tensor's values do not
 * depend on the order or the chunking in which tensors are written.
 *
 * Values are drawn from a normal distribution through a 65536-entry quantile table: one
 * xorshift32 step yields two 16-bit indices, i.e. two weights, with no float math per element.
 */
import { f32ToF16 } from './half.js';

/** splitmix32 finaliser: a well-mixed 32-bit value from any 32-bit input. */
function mix32(x: number): number {
  x = (x + 0x9e3779b9) | 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** A nonzero 32-bit stream seed from a numeric seed and a label (FNV-1a over the label). */
export function streamSeed(seed: number, label: string): number {
  let h = 0x811c9dc5 ^ mix32(seed >>> 0) ^ mix32(Math.floor(seed / 2 ** 32));
  for (let i = 0; i < label.length; i++) {
    h ^= label.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  const s = mix32(h);
  return s === 0 ? 0x6d2b79f5 : s;
}

/** xorshift32 (Marsaglia): period 2^32-1, 3 operations per 32 random bits. */
export class Xorshift32 {
  private s: number;

  constructor(seed: number) {
    this.s = seed >>> 0 || 0x6d2b79f5;
  }

  /** Next value, uint32. */
  next(): number {
    let s = this.s;
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    this.s = s;
    return s >>> 0;
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.next() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }
}

/** Inverse of the standard normal CDF (Acklam's rational approximation, |error| < 1.2e-9). */
export function normalQuantile(p: number): number {
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const pl = 0.02425;
  if (p < pl) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  }
  if (p > 1 - pl) {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    return -(((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  }
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) / (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1);
}

const TABLE_SIZE = 65536;
let quantiles: Float64Array | undefined;
const f16Tables = new Map<number, Uint16Array>();
const f32Tables = new Map<number, Float32Array>();

function standardQuantiles(): Float64Array {
  if (!quantiles) {
    quantiles = new Float64Array(TABLE_SIZE);
    for (let i = 0; i < TABLE_SIZE; i++) quantiles[i] = normalQuantile((i + 0.5) / TABLE_SIZE);
  }
  return quantiles;
}

function normalTableF16(sigma: number): Uint16Array {
  let t = f16Tables.get(sigma);
  if (!t) {
    const q = standardQuantiles();
    t = new Uint16Array(TABLE_SIZE);
    for (let i = 0; i < TABLE_SIZE; i++) t[i] = f32ToF16(sigma * q[i]!);
    f16Tables.set(sigma, t);
  }
  return t;
}

function normalTableF32(sigma: number): Float32Array {
  let t = f32Tables.get(sigma);
  if (!t) {
    const q = standardQuantiles();
    t = new Float32Array(TABLE_SIZE);
    for (let i = 0; i < TABLE_SIZE; i++) t[i] = sigma * q[i]!;
    f32Tables.set(sigma, t);
  }
  return t;
}

/**
 * A fill callback that writes consecutive table entries picked by xorshift32, two per step.
 * Calls must cover the tensor in order (start = previous start + previous length).
 */
function tableFill<T extends Uint16Array | Float32Array>(seed: number, table: T): (dst: T, start: number) => void {
  let s = seed | 0 || 0x6d2b79f5;
  let next = 0;
  let pending = -1; // second half of the last step when a chunk ended on an odd element
  return (dst: T, start: number) => {
    if (start !== next) throw new RangeError(`random fill out of order: expected element ${next}, got ${start}`);
    const n = dst.length;
    let i = 0;
    if (pending >= 0 && n > 0) {
      dst[0] = table[pending]!;
      pending = -1;
      i = 1;
    }
    for (; i + 1 < n; i += 2) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      dst[i] = table[s & 0xffff]!;
      dst[i + 1] = table[s >>> 16]!;
    }
    if (i < n) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      dst[i] = table[s & 0xffff]!;
      pending = s >>> 16;
    }
    next = start + n;
  };
}

/** Half-precision bit patterns drawn from N(0, sigma^2). */
export function normalF16Fill(seed: number, label: string, sigma: number): (dst: Uint16Array, start: number) => void {
  return tableFill(streamSeed(seed, label), normalTableF16(sigma));
}

/** float32 values drawn from N(0, sigma^2) (quantised to 65536 levels, which is plenty here). */
export function normalF32Fill(seed: number, label: string, sigma: number): (dst: Float32Array, start: number) => void {
  return tableFill(streamSeed(seed, label), normalTableF32(sigma));
}

/** Every element the same value (norm weights 1, biases 0). */
export function constantFill(value: number): (dst: Float32Array, start: number) => void {
  return (dst: Float32Array) => {
    dst.fill(value);
  };
}
