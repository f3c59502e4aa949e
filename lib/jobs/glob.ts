/**
 * The small glob dialect of `--images`: `*` (any characters but `/`), `?` (one character but `/`),
 * `**` (a whole segment: zero or more folders), `{a,b}` (alternatives, not nested) and `{00000..00279}`
 * (a number range, zero-padded to the first bound's width, as shells expand it). Everything else
 * matches itself. Paths are matched with `/` separators, relative to the glob's fixed base.
 */
import path from 'node:path';
import { invalidArgument } from '../errors.js';

const MAGIC = /[*?{]/;

export function hasGlobMagic(text: string): boolean {
  return MAGIC.test(text);
}

export interface SplitGlob {
  /** The folder before the first segment with a wildcard: where the walk starts. Absolute. */
  base: string;
  /** The rest, `/`-separated, matched against paths relative to `base`. */
  pattern: string;
  /** Deepest path (in segments) that can match; Infinity with `**`. */
  maxDepth: number;
}

/** Splits `photos/2024/**\/*.jpg` into the fixed folder `photos/2024` and the pattern `**\/*.jpg`. */
export function splitGlob(glob: string, cwd = process.cwd()): SplitGlob {
  if (typeof glob !== 'string' || glob === '') throw invalidArgument('a glob pattern', 'images', glob);
  const normalised = glob.split(path.sep).join('/');
  const absolute = path.posix.isAbsolute(normalised) || path.isAbsolute(glob);
  const segments = normalised.split('/');
  const fixed: string[] = [];
  while (segments.length > 1 && !hasGlobMagic(segments[0] as string)) fixed.push(segments.shift() as string);
  const rest = segments.filter((s) => s !== '' && s !== '.');
  if (rest.length === 0 || !rest.some(hasGlobMagic)) {
    throw invalidArgument('a pattern with *, ? or {a,b} in it', 'images', glob);
  }
  if (rest.some((s) => s === '..')) throw invalidArgument('a pattern without .. after the first wildcard', 'images', glob);
  const fixedPath = fixed.join('/') || (absolute ? '/' : '.');
  const base = path.resolve(cwd, fixedPath);
  return { base, pattern: rest.join('/'), maxDepth: rest.includes('**') ? Infinity : rest.length };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.+^${}()|[\]\\*?]/g, '\\$&');
}

/** `{00000..00279}`: the numbers from one bound to the other, padded to the first bound's width when it has a leading 0. */
function rangeNumbers(from: string, to: string, glob: string): string[] {
  const [a, b] = [Number(from), Number(to)];
  if (Math.abs(b - a) > 100_000) throw invalidArgument('a {A..B} range of at most 100,000 numbers', 'images', glob);
  const width = from.startsWith('0') && from.length > 1 ? from.length : 0;
  const step = a <= b ? 1 : -1;
  const numbers: string[] = [];
  for (let n = a; step > 0 ? n <= b : n >= b; n += step) numbers.push(String(n).padStart(width, '0'));
  return numbers;
}

/** One segment (no `/`) to a regular-expression fragment. */
function segmentSource(segment: string, glob: string): string {
  let out = '';
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i] as string;
    if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else if (c === '{') {
      const end = segment.indexOf('}', i);
      if (end < 0) throw invalidArgument('a pattern with each { closed by }', 'images', glob);
      const inside = segment.slice(i + 1, end);
      const range = /^(\d+)\.\.(\d+)$/.exec(inside);
      if (range) {
        out += `(?:${rangeNumbers(range[1] as string, range[2] as string, glob).join('|')})`;
        i = end;
        continue;
      }
      const options = inside.split(',');
      if (options.some((o) => o.includes('{'))) throw invalidArgument('a pattern without nested {}', 'images', glob);
      out += `(?:${options.map((o) => segmentSource(o, glob)).join('|')})`;
      i = end;
    } else out += escapeRegExp(c);
  }
  return out;
}

/** The pattern as a RegExp over `/`-separated relative paths. */
export function globToRegExp(pattern: string): RegExp {
  if (typeof pattern !== 'string' || pattern === '') throw invalidArgument('a glob pattern', 'pattern', pattern);
  const segments = pattern.split('/').filter((s) => s !== '');
  let source = '';
  segments.forEach((segment, i) => {
    const last = i === segments.length - 1;
    if (segment === '**') {
      // zero or more whole folders; as the last segment, anything below
      source += last ? '.*' : '(?:[^/]+/)*';
    } else {
      source += segmentSource(segment, pattern) + (last ? '' : '/');
    }
  });
  return new RegExp(`^${source}$`);
}
