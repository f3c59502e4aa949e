/**
 * The synthetic world: scenes of a few coloured shapes on a plain background, drawn from a seed.
 * A scene is its own ground truth (CLEVR's separation: scene -> ground truth -> templated questions
 * -> oracle answers); rendering (render.ts) and questions (families.ts) only read it.
 *
 * Coordinates are fractions of the square image (0..1, y down), so the same scene renders at any size
 * and its boxes are LLaVA's `[x1, y1, x2, y2]` on the padded square directly.
 */
import type { Box } from '../srf/box.js';
import { createRandom, type Random } from '../srf/random.js';

export const SHAPES = ['circle', 'square', 'triangle', 'cross', 'star'] as const;
export type ShapeName = (typeof SHAPES)[number];

export const COLOURS = ['red', 'green', 'blue', 'yellow', 'purple', 'orange'] as const;
export type ColourName = (typeof COLOURS)[number];

export const SIZES = ['small', 'large'] as const;
export type SizeName = (typeof SIZES)[number];

export const BACKGROUNDS = ['white', 'gray', 'black'] as const;
export type BackgroundName = (typeof BACKGROUNDS)[number];

/** sRGB of each colour name (objects get a seeded shade around it). */
export const RGB: Readonly<Record<ColourName | BackgroundName, readonly [number, number, number]>> = {
  red: [220, 40, 40],
  green: [40, 170, 60],
  blue: [40, 80, 220],
  yellow: [235, 210, 40],
  purple: [140, 50, 170],
  orange: [245, 130, 20],
  white: [245, 245, 245],
  gray: [128, 128, 128],
  black: [20, 20, 20],
};

/** Half the extent of a shape, as a fraction of the image side. */
export const RADIUS: Readonly<Record<SizeName, number>> = { small: 0.1, large: 0.17 };

/** The 3 x 3 regions of the image an object's centre falls in. */
export const REGIONS = ['top left', 'top', 'top right', 'left', 'center', 'right', 'bottom left', 'bottom', 'bottom right'] as const;
export type RegionName = (typeof REGIONS)[number];

export interface SceneObject {
  /** Drawing order: a later object is drawn over an earlier one. */
  index: number;
  shape: ShapeName;
  colour: ColourName;
  size: SizeName;
  /** Centre, fractions of the image side. */
  x: number;
  y: number;
  /** The drawn colour: the named colour with a seeded shade. */
  rgb: readonly [number, number, number];
}

export interface Scene {
  seed: number;
  background: BackgroundName;
  objects: SceneObject[];
  /** Standard deviation of the per-pixel noise, in 8-bit levels. */
  noise: number;
}

export type { Box };

/** The object's bounding box `[x1, y1, x2, y2]` in 0..1 (the shape's own extent, see render.ts). */
export function objectBox(object: SceneObject): Box {
  const r = RADIUS[object.size];
  const clamp = (v: number) => Math.min(1, Math.max(0, v));
  // A triangle's base and a star's lower points do not reach the full radius downwards.
  const bottom = object.shape === 'triangle' ? r * 0.75 : object.shape === 'star' ? r * 0.81 : r;
  const side = object.shape === 'star' ? r * 0.95 : r;
  return [clamp(object.x - side), clamp(object.y - r), clamp(object.x + side), clamp(object.y + bottom)];
}

/** The region of the object's centre. */
export function objectRegion(object: SceneObject): RegionName {
  const column = object.x < 1 / 3 ? 0 : object.x < 2 / 3 ? 1 : 2;
  const row = object.y < 1 / 3 ? 0 : object.y < 2 / 3 ? 1 : 2;
  return REGIONS[row * 3 + column] as RegionName;
}

/**
 * The order descriptions list objects in, the one a reader would guess: top row of regions first,
 * then the middle, then the bottom, and left to right within a row (drawing order would make a
 * right description one of up to 24 sentences, graded word for word).
 */
export function readingOrder(objects: readonly SceneObject[]): SceneObject[] {
  const row = (o: SceneObject) => Math.floor(REGIONS.indexOf(objectRegion(o)) / 3);
  return [...objects].sort((a, b) => row(a) - row(b) || a.x - b.x || a.y - b.y);
}

export function pick<T>(items: readonly T[], random: Random): T {
  return items[Math.floor(random() * items.length)] as T;
}

export interface SceneOptions {
  /** Fewest and most objects. Default 1..4. */
  minObjects?: number;
  maxObjects?: number;
}

/** Two centres at least this fraction of their radii apart: objects may overlap, never hide one another. */
const MIN_SEPARATION = 0.85;

/**
 * The scene of a seed. Objects never share colour and shape (so "the red circle" is always one
 * object), overlap at most partly (occlusion, never hiding one), and stay inside the image.
 */
export function generateScene(seed: number, options: SceneOptions = {}): Scene {
  const random = createRandom(seed ^ 0x5eed5eed);
  const minObjects = options.minObjects ?? 1;
  const maxObjects = options.maxObjects ?? 4;
  const count = minObjects + Math.floor(random() * (maxObjects - minObjects + 1));
  const background = pick(BACKGROUNDS, random);
  const objects: SceneObject[] = [];
  for (let attempt = 0; objects.length < count && attempt < 200; attempt++) {
    const shape = pick(SHAPES, random);
    const colour = pick(COLOURS, random);
    const size = pick(SIZES, random);
    const r = RADIUS[size];
    const x = r + random() * (1 - 2 * r);
    const y = r + random() * (1 - 2 * r);
    if (objects.some((o) => o.shape === shape && o.colour === colour)) continue;
    if (objects.some((o) => Math.hypot(o.x - x, o.y - y) < MIN_SEPARATION * (RADIUS[o.size] + r))) continue;
    const shade = (v: number) => Math.max(0, Math.min(255, Math.round(v + (random() - 0.5) * 30)));
    const [cr, cg, cb] = RGB[colour];
    objects.push({ index: objects.length, shape, colour, size, x: round3(x), y: round3(y), rgb: [shade(cr), shade(cg), shade(cb)] });
  }
  return { seed, background, objects, noise: 4 + Math.floor(random() * 8) };
}

function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}
