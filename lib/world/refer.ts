/**
 * Referring expressions: "the large red circle at the top left". A reference names some of an
 * object's attributes (size, colour, shape, region); it resolves when exactly one object of the scene
 * has them all. The generator picks a shortest reference that resolves; the oracle resolves any.
 */
import type { Random } from '../srf/random.js';
import { COLOURS, REGIONS, SHAPES, SIZES, objectRegion, type ColourName, type RegionName, type Scene, type SceneObject, type ShapeName, type SizeName } from './scene.js';

export type Attribute = 'size' | 'colour' | 'shape' | 'region';

export interface Reference {
  size?: SizeName;
  colour?: ColourName;
  shape?: ShapeName;
  region?: RegionName;
}

/** How a region is said after a noun: "the circle at the top left", "the star in the center". */
export const REGION_PHRASES: Readonly<Record<RegionName, string>> = {
  'top left': 'at the top left',
  top: 'at the top',
  'top right': 'at the top right',
  left: 'on the left',
  center: 'in the center',
  right: 'on the right',
  'bottom left': 'at the bottom left',
  bottom: 'at the bottom',
  'bottom right': 'at the bottom right',
};

export function matches(object: SceneObject, reference: Reference): boolean {
  return (
    (reference.size === undefined || reference.size === object.size) &&
    (reference.colour === undefined || reference.colour === object.colour) &&
    (reference.shape === undefined || reference.shape === object.shape) &&
    (reference.region === undefined || reference.region === objectRegion(object))
  );
}

/** The one object the reference names, or null when none or several match. */
export function resolve(scene: Scene, reference: Reference): SceneObject | null {
  const found = lookUp(scene, reference);
  return 'object' in found ? found.object : null;
}

/** The one object the reference names, or why it names none: no object has its attributes, or several do. */
export function lookUp(scene: Scene, reference: Reference): { object: SceneObject } | { unanswerable: 'absent' | 'ambiguous' } {
  const found = scene.objects.filter((o) => matches(o, reference));
  if (found.length === 1) return { object: found[0] as SceneObject };
  return { unanswerable: found.length === 0 ? 'absent' : 'ambiguous' };
}

/** "large red circle at the top left"; without a shape the noun is "object". */
export function referenceText(reference: Reference): string {
  const words = [reference.size, reference.colour, reference.shape ?? 'object'].filter(Boolean);
  if (reference.region !== undefined) words.push(REGION_PHRASES[reference.region]);
  return words.join(' ');
}

const ATTRIBUTE_SETS: readonly (readonly Attribute[])[] = [
  ['shape'],
  ['colour'],
  ['colour', 'shape'],
  ['size', 'shape'],
  ['size', 'colour'],
  ['shape', 'region'],
  ['colour', 'region'],
  ['size', 'colour', 'shape'],
  ['colour', 'shape', 'region'],
  ['size', 'colour', 'shape', 'region'],
];

function pickAttributes(object: SceneObject, attributes: readonly Attribute[]): Reference {
  const reference: Reference = {};
  for (const a of attributes) {
    if (a === 'size') reference.size = object.size;
    if (a === 'colour') reference.colour = object.colour;
    if (a === 'shape') reference.shape = object.shape;
    if (a === 'region') reference.region = objectRegion(object);
  }
  return reference;
}

/**
 * A shortest reference to `object` that avoids the `without` attributes (a colour question must not
 * name the colour), chosen at random among the shortest; null when none resolves.
 */
export function makeReference(scene: Scene, object: SceneObject, random: Random, without: readonly Attribute[] = []): Reference | null {
  const candidates = ATTRIBUTE_SETS.filter((set) => !set.some((a) => without.includes(a)))
    .map((set) => pickAttributes(object, set))
    .filter((reference) => resolve(scene, reference) === object);
  if (candidates.length === 0) return null;
  const shortest = Math.min(...candidates.map((r) => Object.keys(r).length));
  const best = candidates.filter((r) => Object.keys(r).length === shortest);
  return best[Math.floor(random() * best.length)] as Reference;
}

const alternatives = (words: readonly string[]) => words.map((w) => w.replace(/ /g, ' ')).join('|');
const REGION_BY_PHRASE = new Map(Object.entries(REGION_PHRASES).map(([region, phrase]) => [phrase, region as RegionName]));

/** The pattern of a reference text (the inverse of referenceText); groups: size, colour, noun, region phrase. */
export const REFERENCE_PATTERN = `(?:(${alternatives(SIZES)}) )?(?:(${alternatives(COLOURS)}) )?(${alternatives(SHAPES)}|object)(?: (${alternatives([...REGION_BY_PHRASE.keys()])}))?`;

/** A reference from the groups of REFERENCE_PATTERN. */
export function referenceFromGroups(size?: string, colour?: string, noun?: string, regionPhrase?: string): Reference {
  const reference: Reference = {};
  if (size) reference.size = size as SizeName;
  if (colour) reference.colour = colour as ColourName;
  if (noun && noun !== 'object') reference.shape = noun as ShapeName;
  if (regionPhrase) reference.region = REGION_BY_PHRASE.get(regionPhrase) as RegionName;
  return reference;
}

export { REGIONS };
