/**
 * LLaVA-1.5 boxes: `[x1, y1, x2, y2]`, fractions of the image padded to a square, two decimals
 * (RefCOCO/VG data of mix665k). Used by the box and region-text data types.
 */
import { invalidArgument } from '../errors.js';

export type Box = readonly [x1: number, y1: number, x2: number, y2: number];

export interface BoxOptions {
  /**
   * What a coordinate is a fraction of. Default 1: LLaVA's convention, and any value outside 0..1
   * means the text holds no LLaVA box (parseBox gives null): we cannot know the image size to
   * rescale pixels, and a guessed scale would make a wrong box look consistent. Pass e.g. 1000
   * for models that write boxes in 0..1000.
   */
  scale?: number;
}

const NUMBER = String.raw`[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?`;
const BOX_PATTERN = String.raw`\[\s*(${NUMBER})\s*,\s*(${NUMBER})\s*,\s*(${NUMBER})\s*,\s*(${NUMBER})\s*\]`;
const FIRST_BOX = new RegExp(BOX_PATTERN);
/** A whole text that is one box, maybe with a final period. */
const ONLY_BOX = new RegExp(String.raw`^\s*${BOX_PATTERN}\s*\.?\s*$`);

function checkScale(options: BoxOptions): number {
  const scale = options.scale ?? 1;
  if (typeof scale !== 'number' || !Number.isFinite(scale) || scale <= 0) {
    throw invalidArgument('a positive number', 'scale', scale);
  }
  return scale;
}

function toBox(match: RegExpExecArray | null, scale: number): Box | null {
  if (!match) return null;
  const [x1, y1, x2, y2] = match.slice(1, 5).map((value) => Number(value) / scale) as [number, number, number, number];
  for (const value of [x1, y1, x2, y2]) if (!(value >= 0 && value <= 1)) return null;
  // An inverted box is not a box LLaVA writes; treating it as one would hide a broken reply.
  if (x1 > x2 || y1 > y2) return null;
  return [x1, y1, x2, y2];
}

/**
 * The first `[a, b, c, d]` of four numbers in the text, as a box in 0..1; null when there is none,
 * or when that first one is out of range or inverted (later ones are not tried).
 */
export function parseBox(text: string, options: BoxOptions = {}): Box | null {
  if (typeof text !== 'string') throw invalidArgument('a string', 'text', text);
  return toBox(FIRST_BOX.exec(text), checkScale(options));
}

/** The box when the whole text is one box (`[0.1, 0.2, 0.3, 0.4]`, a final period allowed), else null. */
export function parseBoxAnswer(text: string, options: BoxOptions = {}): Box | null {
  if (typeof text !== 'string') throw invalidArgument('a string', 'text', text);
  return toBox(ONLY_BOX.exec(text), checkScale(options));
}

/** LLaVA's way of writing a box: two decimals. */
export function formatBox(box: Box): string {
  return `[${box.map((value) => value.toFixed(2)).join(', ')}]`;
}
