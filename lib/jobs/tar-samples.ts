/**
 * WebDataset tar shards as img2dataset writes them (`00000.tar` holding `000000000.jpg`,
 * `000000000.json`, `000000000.txt`, ...), read as a stream of samples: members that share a key
 * (the member's path up to the first dot of its file name) are one sample, and a shard holds a
 * sample's members next to each other. A sample's first image member is its image; its `.json` and
 * `.txt` siblings are its metadata. Streamed with tar-stream: one member in memory at a time, no
 * temporary files, whatever the shard's size; a stream (standard input) reads the same as a file.
 */
import { createReadStream } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { extract } from 'tar-stream';
import { SrfError } from '../errors.js';

/** What a sample's image may be (WebDataset's image extensions that sharp decodes). */
const IMAGE_MEMBER_EXTENSIONS = new Set(['jpg', 'jpeg', 'png', 'webp', 'gif', 'tif', 'tiff', 'avif', 'ppm', 'pgm', 'pnm']);

export interface TarSample {
  /** WebDataset's key: the member path without its extensions (`000000123`, `sub/000000123`). */
  key: string;
  /** The image member's extension, lower-case (`jpg`); '' when the sample has no image member. */
  extension: string;
  /** The image member's bytes; empty when the sample has none. */
  bytes: Uint8Array;
  /** `json` (parsed, or its text when it does not parse) and `txt` siblings, by extension. */
  metadata: Record<string, unknown>;
  /** Why the sample cannot be used (no image member); it becomes an error line. */
  problem?: SrfError;
}

/** `sub/000000123.jpg` -> key `sub/000000123`, extension `jpg` (WebDataset: the first dot of the file name). */
export function splitMemberName(name: string): { key: string; extension: string } {
  const folder = path.posix.dirname(name);
  const file = path.posix.basename(name);
  const dot = file.indexOf('.');
  const stem = dot < 0 ? file : file.slice(0, dot);
  return { key: folder === '.' ? stem : `${folder}/${stem}`, extension: dot < 0 ? '' : file.slice(dot + 1).toLowerCase() };
}

async function readAll(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

class SampleBuilder {
  key = '';
  extension = '';
  bytes: Uint8Array = new Uint8Array(0);
  metadata: Record<string, unknown> = {};

  constructor(readonly shard: string) {}

  add(extension: string, data: Buffer): void {
    const last = extension.split('.').pop() ?? '';
    if (!this.extension && IMAGE_MEMBER_EXTENSIONS.has(last)) {
      this.extension = last;
      this.bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    } else if (extension === 'json') {
      const text = data.toString('utf8');
      try {
        this.metadata.json = JSON.parse(text);
      } catch {
        this.metadata.json = text;
      }
    } else if (extension === 'txt') {
      this.metadata.txt = data.toString('utf8');
    }
  }

  take(): TarSample {
    const sample: TarSample = { key: this.key, extension: this.extension, bytes: this.bytes, metadata: this.metadata };
    if (!this.extension) {
      sample.problem = new SrfError('IMAGE_UNREADABLE', `${this.shard}: sample ${this.key} has no image member (${[...IMAGE_MEMBER_EXTENSIONS].join(', ')})`, { file: this.shard });
    }
    return sample;
  }
}

/**
 * The members of a tar that belong to a sample, in order, each with its key and extension: regular
 * files with an extension and no leading dot (img2dataset writes none without one). Other members
 * are skipped unread. The tar is read as a stream; a file opened here is closed at the end.
 */
async function* sampleMembers(input: string | Readable): AsyncGenerator<{ entry: AsyncIterable<unknown> & { resume(): void }; key: string; extension: string }> {
  const stream = typeof input === 'string' ? createReadStream(input) : input;
  const tar = extract();
  stream.on('error', (error: Error) => tar.destroy(error));
  stream.pipe(tar);
  try {
    for await (const entry of tar) {
      const name = entry.header.name.replace(/^\.\//, '');
      const { key, extension } = splitMemberName(name);
      if (entry.header.type !== 'file' || path.posix.basename(name).startsWith('.') || extension === '') {
        entry.resume();
        continue;
      }
      yield { entry, key, extension };
    }
  } finally {
    if (typeof input === 'string') stream.destroy();
  }
}

/** How many sample keys a tar holds, from its members' headers (their data is skipped, not kept). */
export async function countTarKeys(file: string): Promise<number> {
  let count = 0;
  let last: string | undefined;
  for await (const { entry, key } of sampleMembers(file)) {
    if (key !== last) count++;
    last = key;
    entry.resume();
  }
  return count;
}

/**
 * The samples of one tar, in order. A shard cut short or not a tar ends with a DATA_INVALID error
 * that names the shard and the last key read; the samples before it are yielded first.
 */
export async function* readTarSamples(input: string | Readable, shard: string): AsyncGenerator<TarSample> {
  let current: SampleBuilder | undefined;
  try {
    for await (const { entry, key, extension } of sampleMembers(input)) {
      const data = await readAll(entry);
      if (current && current.key !== key) {
        yield current.take();
        current = undefined;
      }
      current ??= Object.assign(new SampleBuilder(shard), { key });
      current.add(extension, data);
    }
  } catch (cause) {
    const where = current ? ` at sample ${current.key}` : '';
    throw new SrfError('DATA_INVALID', `${shard}: not a readable tar, or cut short${where} (${(cause as Error).message})`, { file: shard, cause });
  }
  if (current) yield current.take();
}
