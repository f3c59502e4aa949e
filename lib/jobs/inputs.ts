/**
 * The images a run works on, streamed: a folder (walked recursively, image extensions only), a glob
 * (`photos/**\/*.jpg`), a list file (one path per line, relative to the list's folder) or a single
 * image; or WebDataset tar shards (a `.tar`, a glob or brace range of them such as
 * `shards/{00000..00279}.tar`, a folder of them, or `-`: one tar on standard input), whose samples
 * are read by tar-samples.ts and carry their bytes and metadata instead of a path. Order is
 * deterministic (entries sorted by name within each folder, list order for lists, tars sorted);
 * `--shard I/N` keeps the images whose relative path hashes to I mod N, or for tar shards every N-th
 * tar from the I-th (a worker reads whole tars, never another's), so shards do not depend on the
 * order or on each other; `--limit N` keeps the first N after sharding.
 *
 * Memory: the walk holds one sorted folder listing per open level (names only), never the whole
 * tree; a list file is read line by line.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { opendir, readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { SrfError, invalidArgument } from '../errors.js';
import { globToRegExp, hasGlobMagic, splitGlob } from './glob.js';
import { countParquetRows, readParquetSamples } from './parquet-samples.js';
import { countTarKeys, readTarSamples, type TarSample } from './tar-samples.js';
import type { Truncation } from '../srf/truncation.js';
import { leavesFolder } from '../util/files.js';

/** Extensions a folder walk picks up (case-insensitive): what sharp decodes. */
export const IMAGE_EXTENSIONS: ReadonlySet<string> = new Set([
  '.jpg', '.jpeg', '.jpe', '.jfif', '.png', '.webp', '.gif', '.tif', '.tiff', '.avif', '.heic', '.heif',
]);

export function isImageFileName(name: string): boolean {
  return IMAGE_EXTENSIONS.has(path.extname(name).toLowerCase());
}

/** `rescore`: an earlier run's scored triplets (rescore-inputs.ts), whose images are files under its image root. */
export type InputKind = 'dir' | 'glob' | 'list' | 'file' | 'shards' | 'rescore';

/** `--images -`: one tar shard on standard input. */
export const STDIN = '-';

export interface InputSource {
  kind: InputKind;
  /** `--images` as given. */
  spec: string;
  /** Absolute: the folder walked, the glob's fixed folder, the list file, or the single image. */
  location: string;
  /** Absolute: image paths in the outputs are relative to this folder. */
  imageRoot: string;
  /** kind 'glob': the pattern below `location`. */
  pattern?: string;
  /**
   * kind 'shards': the tar or parquet shards, absolute and sorted ([STDIN] for a tar on standard
   * input), each named by its path below `location` without its extension.
   */
  shards?: ShardFile[];
  /** kind 'rescore': the earlier run's image root, which its journal's image paths are relative to. */
  earlierImageRoot?: string;
}

export interface ResolveInputOptions {
  /** Overrides the default image root (the folder, the glob's fixed folder, the list's folder). */
  imageRoot?: string;
  cwd?: string;
}

/**
 * What `--images` names. A path with `*`, `?` or `{` is a glob unless a file of that name exists; a
 * folder is walked; a file with an image extension is one image; any other file is a list.
 */
export async function resolveInputSource(images: string, options: ResolveInputOptions = {}): Promise<InputSource> {
  if (typeof images !== 'string' || images.trim() === '') throw invalidArgument('a folder, glob or list file', 'images', images);
  const cwd = options.cwd ?? process.cwd();
  const shards = await findShards(images, cwd);
  if (shards) return { ...shards, imageRoot: path.resolve(cwd, options.imageRoot ?? shards.location) };
  const absolute = path.resolve(cwd, images);
  let info: Awaited<ReturnType<typeof stat>> | undefined;
  try {
    info = await stat(absolute);
  } catch {
    info = undefined;
  }
  let source: Omit<InputSource, 'imageRoot'> & { defaultRoot: string };
  if (!info && hasGlobMagic(images)) {
    const { base, pattern } = splitGlob(images, cwd);
    source = { kind: 'glob', spec: images, location: base, pattern, defaultRoot: base };
  } else if (!info) {
    throw new SrfError('FILE_NOT_FOUND', 'no such folder, glob or list file for --images', { file: absolute });
  } else if (info.isDirectory()) {
    source = { kind: 'dir', spec: images, location: absolute, defaultRoot: absolute };
  } else if (isImageFileName(absolute)) {
    source = { kind: 'file', spec: images, location: absolute, defaultRoot: path.dirname(absolute) };
  } else {
    source = { kind: 'list', spec: images, location: absolute, defaultRoot: path.dirname(absolute) };
  }
  const { defaultRoot, ...rest } = source;
  return { ...rest, imageRoot: options.imageRoot === undefined ? defaultRoot : path.resolve(cwd, options.imageRoot) };
}

export interface ShardFile {
  file: string;
  name: string;
  format: 'tar' | 'parquet';
}

const shardFormat = (name: string): ShardFile['format'] | undefined => (/\.tar$/i.test(name) ? 'tar' : /\.parquet$/i.test(name) ? 'parquet' : undefined);
const isShardName = (name: string): boolean => shardFormat(name) !== undefined;

/**
 * `--images` as tar or parquet shards: `-` (a tar on stdin), a `.tar` or `.parquet` file, a glob whose
 * pattern ends in one of those, or a folder whose top level holds such files and no images; null
 * when it is none of these. The image root given here is a placeholder: a run puts shard images
 * under its output folder (refine.ts).
 */
async function findShards(images: string, cwd: string): Promise<Omit<InputSource, 'imageRoot'> | null> {
  if (images === STDIN) return { kind: 'shards', spec: images, location: cwd, shards: [{ file: STDIN, name: 'stdin', format: 'tar' }] };
  const absolute = path.resolve(cwd, images);
  const info = await stat(absolute).catch(() => undefined);
  const named = (location: string, files: string[]): ShardFile[] =>
    files.map((file) => ({ file, name: path.relative(location, file).split(path.sep).join('/').replace(/\.(tar|parquet)$/i, ''), format: shardFormat(file) as ShardFile['format'] }));
  if (info?.isFile() && isShardName(absolute)) return { kind: 'shards', spec: images, location: path.dirname(absolute), shards: named(path.dirname(absolute), [absolute]) };
  if (info?.isDirectory()) {
    const names = (await opendir(absolute).then(async (dir) => {
      const found: string[] = [];
      for await (const entry of dir) if (entry.isFile() && !entry.name.startsWith('.')) found.push(entry.name);
      return found;
    })).sort();
    if (names.some(isShardName) && !names.some(isImageFileName)) return { kind: 'shards', spec: images, location: absolute, shards: named(absolute, names.filter(isShardName).map((n) => path.join(absolute, n))) };
    return null;
  }
  if (!info && hasGlobMagic(images) && isShardName(images)) {
    const { base, pattern } = splitGlob(images, cwd);
    const found: string[] = [];
    for await (const file of globFiles(base, pattern, () => {})) found.push(file.absolute);
    if (found.length === 0) throw new SrfError('FILE_NOT_FOUND', `no shard matches ${images}`, { file: base });
    return { kind: 'shards', spec: images, location: base, pattern, shards: named(base, found) };
  }
  return null;
}

export interface Shard {
  /** 0-based. */
  index: number;
  count: number;
}

/** `I/N` with 0 <= I < N (0-based, like a Kubernetes Indexed Job's JOB_COMPLETION_INDEX). */
export function parseShard(text: string): Shard {
  const match = typeof text === 'string' ? /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text) : null;
  const index = match ? Number(match[1]) : NaN;
  const count = match ? Number(match[2]) : NaN;
  if (!match || !Number.isSafeInteger(count) || count < 1 || index >= count) {
    throw invalidArgument('I/N with 0 <= I < N (e.g. 0/4)', 'shard', text);
  }
  return { index, count };
}

export function formatShard(shard: Shard): string {
  return `${shard.index}/${shard.count}`;
}

/**
 * Hex digits of the SHA-1 of an image's path in its id: 16 (64 bits; among 10 million images two
 * share them with probability ~3e-6, and their file names must then match too). Runs begun before
 * used 12 (48 bits: ~0.2 for 10 million), and a resume of one keeps them.
 */
export const ID_HEX_DIGITS = 16;
export const LEGACY_ID_HEX_DIGITS = 12;

export interface InputImage {
  /** Stable id: ID_HEX_DIGITS hex digits of the SHA-1 of `image`, then the file name made safe. */
  id: string;
  /** Absolute path. */
  path: string;
  /** Relative to the image root, `/`-separated: what the outputs carry. */
  image: string;
  /** 0-based position in the (sharded) input order. */
  index: number;
  /** A stable 32-bit number of the image (from the same hash), for per-image seeds. */
  key: number;
  /** Set when the item cannot be processed (e.g. outside the image root); it becomes an error line. */
  problem?: SrfError;
  /** A tar shard's sample: the image's bytes (no file: `path` is the shard's), its metadata and its shard's name. */
  bytes?: Uint8Array;
  metadata?: Record<string, unknown>;
  shard?: string;
  /** kind 'rescore': the earlier run's question and answer (and its I->QA seed and truncation): no I->QA, only the checks. */
  given?: GivenTriplet;
}

export interface GivenTriplet {
  question: string;
  answer: string;
  seed?: number;
  truncation?: Truncation;
}

export interface ImageIdentity {
  id: string;
  /** First 32 bits of the hash: the shard is shardKey mod N. */
  shardKey: number;
  key: number;
}

const SAFE_NAME_CHARS = 40;

/** Id, shard key and seed key of an image from its path relative to the image root. */
export function identifyImage(relativePath: string, idHexDigits = ID_HEX_DIGITS): ImageIdentity {
  const digest = createHash('sha1').update(relativePath).digest();
  const name = path.posix.basename(relativePath).replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, SAFE_NAME_CHARS);
  return {
    id: `${digest.toString('hex', 0, idHexDigits / 2)}-${name || 'image'}`,
    shardKey: digest.readUInt32BE(0),
    key: digest.readUInt32BE(12),
  };
}

export function inShard(relativePath: string, shard: Shard | undefined): boolean {
  return !shard || shard.count === 1 || identifyImage(relativePath).shardKey % shard.count === shard.index;
}

export interface StreamInputsOptions {
  shard?: Shard;
  /** Keep the first N images (after sharding). */
  limit?: number;
  /** Folders that cannot be read, symlink loops: reported here and skipped. */
  onWarning?: (message: string) => void;
  /** Hex digits of an image file's id (ID_HEX_DIGITS; LEGACY_ID_HEX_DIGITS to resume an older run). */
  idHexDigits?: number;
  /** Shards by name that are not read at all (finished in an earlier session). */
  skipShards?: ReadonlySet<string>;
  /** Parquet shards: the column holding the image bytes (default DEFAULT_IMAGE_COLUMNS). */
  imageColumn?: string;
}

interface FoundFile {
  absolute: string;
}

/** The images of a source, in order, sharded and limited. */
export async function* streamInputs(source: InputSource, options: StreamInputsOptions = {}): AsyncGenerator<InputImage> {
  const limit = options.limit;
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 0)) throw invalidArgument('a non-negative integer', 'limit', limit);
  if (limit === 0) return;
  const warn = options.onWarning ?? (() => {});
  if (source.kind === 'shards') {
    yield* streamShardInputs(source, options, warn);
    return;
  }
  let index = 0;
  for await (const found of findFiles(source, warn)) {
    const relative = path.relative(source.imageRoot, found.absolute);
    const image = relative.split(path.sep).join('/');
    const identity = identifyImage(image, options.idHexDigits);
    if (options.shard && options.shard.count > 1 && identity.shardKey % options.shard.count !== options.shard.index) continue;
    const item: InputImage = { id: identity.id, path: found.absolute, image, index, key: identity.key };
    if (leavesFolder(relative)) {
      item.problem = new SrfError(
        'INVALID_ARGUMENT',
        `the image is not inside the image root ${source.imageRoot}; training data needs paths relative to one folder (set --image-root)`,
        { file: found.absolute },
      );
    }
    yield item;
    index++;
    if (limit !== undefined && index >= limit) return;
  }
}

/** The shard files of this worker: every N-th of the sorted list from the I-th (round-robin), whole. */
export function shardsOfWorker(source: InputSource, shard: Shard | undefined): ShardFile[] {
  const all = source.shards ?? [];
  return !shard || shard.count === 1 ? all : all.filter((_, i) => i % shard.count === shard.index);
}

/** A tar sample's identity: id `<shard>/<key>`, and the 32-bit seed key from its hash. */
export function identifySample(shard: string, key: string): ImageIdentity {
  const id = `${shard}/${key}`;
  const digest = createHash('sha1').update(id).digest();
  return { id, shardKey: digest.readUInt32BE(0), key: digest.readUInt32BE(12) };
}

function samplesOf(shard: ShardFile, options: StreamInputsOptions): AsyncGenerator<TarSample> {
  if (shard.format === 'parquet') return readParquetSamples(shard.file, options.imageColumn);
  return readTarSamples(shard.file === STDIN ? process.stdin : shard.file, shard.file === STDIN ? 'standard input' : shard.file);
}

async function* streamShardInputs(source: InputSource, options: StreamInputsOptions, warn: (message: string) => void): AsyncGenerator<InputImage> {
  const all = source.shards ?? [];
  const mine = shardsOfWorker(source, options.shard);
  if (options.shard && options.shard.count > all.length) {
    warn(`${all.length} shard file${all.length === 1 ? '' : 's'} for ${options.shard.count} workers: worker ${options.shard.index} ${mine.length === 0 ? 'has none' : 'has one'}; workers take whole files`);
  }
  let index = 0;
  for (const tar of mine) {
    if (options.skipShards?.has(tar.name)) continue;
    // A key a shard holds twice (not next to each other) is the same key for two samples: the second
    // is `key~2`, the same on every read, so both are processed and a resume still matches them.
    const keys = new Map<string, number>();
    try {
      for await (const sample of samplesOf(tar, options)) {
        const seen = (keys.get(sample.key) ?? 0) + 1;
        keys.set(sample.key, seen);
        if (seen > 1) {
          warn(`${tar.file}: key ${sample.key} appears again; this sample is ${sample.key}~${seen}`);
          sample.key = `${sample.key}~${seen}`;
        }
        const identity = identifySample(tar.name, sample.key);
        const image = `${tar.name}/${sample.key}.${sample.extension || 'missing'}`;
        const item: InputImage = { id: identity.id, path: tar.file, image, index, key: identity.key, bytes: sample.bytes, metadata: sample.metadata, shard: tar.name };
        if (sample.problem) item.problem = sample.problem;
        yield item;
        index++;
        if (options.limit !== undefined && index >= options.limit) return;
      }
    } catch (error) {
      // A shard cut short or unreadable (a parquet file without the image column): one error line for it, and the next.
      const problem = error instanceof SrfError ? error : new SrfError('DATA_INVALID', String(error), { file: tar.file });
      const identity = identifySample(tar.name, `#${tar.format}`);
      yield { id: identity.id, path: tar.file, image: `${tar.name}.${tar.format}`, index, key: identity.key, problem, shard: tar.name };
      index++;
    }
  }
}

/**
 * How many images a source holds after sharding and limit (walks it once more; for progress ETA).
 * Tar shards: img2dataset's `<shard>_stats.json` where there is one, else their members' headers;
 * standard input is not read twice (rejects: no ETA).
 */
export async function countInputs(source: InputSource, options: StreamInputsOptions = {}): Promise<number> {
  if (source.kind === 'shards') return countShardSamples(source, options);
  let count = 0;
  for await (const _ of streamInputs(source, { ...options, onWarning: () => {} })) count++;
  return count;
}

async function countShardSamples(source: InputSource, options: StreamInputsOptions): Promise<number> {
  let count = 0;
  for (const tar of shardsOfWorker(source, options.shard)) {
    if (tar.file === STDIN) throw new SrfError('INVALID_ARGUMENT', 'standard input is read once: no count');
    if (tar.format === 'parquet') {
      count += await countParquetRows(tar.file);
      continue;
    }
    const stats = await readFile(tar.file.replace(/\.tar$/i, '_stats.json'), 'utf8').then((text) => JSON.parse(text) as { successes?: unknown }, () => null);
    count += typeof stats?.successes === 'number' ? stats.successes : await countTarKeys(tar.file);
  }
  return options.limit === undefined ? count : Math.min(count, options.limit);
}

function findFiles(source: InputSource, warn: (message: string) => void): AsyncGenerator<FoundFile> {
  switch (source.kind) {
    case 'file':
      return (async function* () {
        yield { absolute: source.location };
      })();
    case 'list':
      return readList(source.location);
    case 'dir':
      return walk(source.location, '', { maxDepth: Infinity, accept: (_rel, name) => isImageFileName(name), warn, root: true });
    case 'glob':
      return globFiles(source.location, source.pattern as string, warn);
    case 'shards':
      throw new Error('shards are streamed by streamShardInputs, not found as files');
    case 'rescore':
      throw new Error('an earlier run\'s triplets are streamed by streamRunInputs (rescore-inputs.ts), not found as files');
  }
}

/** The files below `base` whose relative path matches `pattern`. */
function globFiles(base: string, pattern: string, warn: (message: string) => void): AsyncGenerator<FoundFile> {
  const regexp = globToRegExp(pattern);
  const segments = pattern.split('/').filter((s) => s !== '');
  const maxDepth = segments.includes('**') ? Infinity : segments.length;
  return walk(base, '', { maxDepth, accept: (rel) => regexp.test(rel), warn, root: true });
}

async function* readList(listFile: string): AsyncGenerator<FoundFile> {
  const folder = path.dirname(listFile);
  const lines = createInterface({ input: createReadStream(listFile, { encoding: 'utf8' }), crlfDelay: Infinity });
  try {
    for await (const raw of lines) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      yield { absolute: path.resolve(folder, line) };
    }
  } catch (cause) {
    throw new SrfError('FILE_UNREADABLE', `cannot read the list file: ${(cause as Error).message}`, { file: listFile, cause });
  } finally {
    lines.close();
  }
}

interface WalkOptions {
  maxDepth: number;
  accept(relative: string, name: string): boolean;
  warn(message: string): void;
  root: boolean;
  visited?: Set<string>;
}

type EntryKind = 'file' | 'dir' | 'link';

/** Depth-first, entries sorted by name (code-unit order); hidden entries (leading dot) skipped. */
async function* walk(folder: string, relativeFolder: string, options: WalkOptions, depth = 1): AsyncGenerator<FoundFile> {
  const visited = options.visited ?? new Set<string>();
  let real: string;
  let names: string[];
  let kinds: Map<string, EntryKind>;
  try {
    real = await realpath(folder);
    if (visited.has(real)) {
      options.warn(`${folder}: already walked (symlink loop or duplicate link), skipped`);
      return;
    }
    visited.add(real);
    kinds = new Map();
    const handle = await opendir(folder, { bufferSize: 256 });
    for await (const entry of handle) {
      if (entry.name.startsWith('.')) continue;
      const kind: EntryKind | null = entry.isDirectory() ? 'dir' : entry.isFile() ? 'file' : entry.isSymbolicLink() ? 'link' : null;
      if (kind) kinds.set(entry.name, kind);
    }
    names = Array.from(kinds.keys()).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (options.root) {
      throw new SrfError(code === 'ENOENT' ? 'FILE_NOT_FOUND' : 'FILE_UNREADABLE', `cannot read the image folder (${code ?? cause})`, {
        file: folder,
        cause,
      });
    }
    options.warn(`${folder}: cannot read this folder (${code ?? (cause as Error).message}), skipped`);
    return;
  }
  const child: WalkOptions = { ...options, root: false, visited };
  for (const name of names) {
    const absolute = path.join(folder, name);
    const relative = relativeFolder === '' ? name : `${relativeFolder}/${name}`;
    let kind = kinds.get(name) as EntryKind;
    kinds.delete(name);
    if (kind === 'link') {
      try {
        kind = (await stat(absolute)).isDirectory() ? 'dir' : 'file';
      } catch {
        options.warn(`${absolute}: broken symbolic link, skipped`);
        continue;
      }
    }
    if (kind === 'dir') {
      if (depth < options.maxDepth) yield* walk(absolute, relative, child, depth + 1);
    } else if (options.accept(relative, name)) {
      yield { absolute };
    }
  }
}
