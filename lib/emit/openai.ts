/**
 * OpenAI-style chat JSONL, one object per line, for trainers that read the chat-completions shape:
 *
 *     {"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"..."}},
 *                                            {"type":"text","text":"Q"}]},
 *                  {"role":"assistant","content":"A"}]}
 *
 * The image is referenced by a path (default, relative to imageRoot), a file:// URL, inlined as a base64
 * data URL ('data-url'), or as a URL under a prefix the user serves the image root at ('url-prefix').
 * Fine-tuning services take only the last two: OpenAI's vision fine-tuning takes https URLs or base64
 * data URLs of JPEG, PNG or WEBP images; Together and Fireworks take base64 only. In those two modes an
 * image in another format (GIF, BMP, TIFF, ...) is refused with IMAGE_FORMAT_UNSUPPORTED, which the
 * file writer turns into a dropped sample and a message (emitters.ts).
 */
import { open, readFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { SrfError, invalidArgument } from '../errors.js';
import { checkImageRoot, relativeImagePath, toTrainingSample, type KeptTriplet, type TrainingSample } from './sample.js';

export type OpenAiImageReference = 'relative' | 'absolute' | 'file-url' | 'data-url' | 'url-prefix';

/** How the runs' train.openai.jsonl references images (`--openai-images`). */
export interface OpenAiImages {
  imageUrl: OpenAiImageReference;
  imageUrlPrefix?: string;
}

/** The runs' default: images inlined as base64 data URLs, what fine-tuning services take. */
export const DEFAULT_OPENAI_IMAGES: Readonly<OpenAiImages> = Object.freeze({ imageUrl: 'data-url' });

export interface OpenAiEmitOptions {
  imageRoot: string;
  /** How the image is referenced. Default 'relative'. */
  imageUrl?: OpenAiImageReference;
  /** 'url-prefix': the URL the image root is served at; the image's relative path is appended. */
  imageUrlPrefix?: string;
}

/** Image formats fine-tuning services take (OpenAI, Azure OpenAI, Together: JPEG, PNG, WEBP). */
const SERVICE_FORMATS: Readonly<Record<string, string>> = { jpeg: 'image/jpeg', png: 'image/png', webp: 'image/webp' };

/** The format from the file's first bytes (extensions lie). */
function sniffFormat(head: Buffer): string {
  if (head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return 'jpeg';
  if (head[0] === 0x89 && head.toString('latin1', 1, 4) === 'PNG') return 'png';
  if (head.toString('latin1', 0, 4) === 'RIFF' && head.toString('latin1', 8, 12) === 'WEBP') return 'webp';
  if (head.toString('latin1', 0, 4) === 'GIF8') return 'gif';
  if (head.toString('latin1', 0, 2) === 'BM') return 'bmp';
  if (head.toString('latin1', 0, 4) === 'II*\0' || head.toString('latin1', 0, 4) === 'MM\0*') return 'tiff';
  return 'unknown';
}

async function readImage(absolute: string, sampleId: string, whole: boolean): Promise<Buffer> {
  try {
    if (whole) return await readFile(absolute);
    const handle = await open(absolute, 'r');
    try {
      const head = Buffer.alloc(16);
      const { bytesRead } = await handle.read(head, 0, 16, 0);
      return head.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  } catch (error) {
    throw new SrfError('FILE_UNREADABLE', `cannot read image of sample ${JSON.stringify(sampleId)}`, { file: absolute, cause: error });
  }
}

/** The image's bytes (or its first bytes) when a fine-tuning service takes its format; else IMAGE_FORMAT_UNSUPPORTED. */
async function serviceImage(absolute: string, sampleId: string, whole: boolean): Promise<{ bytes: Buffer; mime: string }> {
  const bytes = await readImage(absolute, sampleId, whole);
  const format = sniffFormat(bytes);
  const mime = SERVICE_FORMATS[format];
  if (!mime) {
    throw new SrfError('IMAGE_FORMAT_UNSUPPORTED', `sample ${JSON.stringify(sampleId)}: the image is ${format === 'unknown' ? 'in an unknown format' : format.toUpperCase()}; fine-tuning services take JPEG, PNG or WEBP`, { file: absolute });
  }
  return { bytes, mime };
}

export type OpenAiContentPart = { type: 'image_url'; image_url: { url: string } } | { type: 'text'; text: string };

export interface OpenAiMessage {
  role: 'user' | 'assistant';
  content: string | OpenAiContentPart[];
}

export interface OpenAiRecord {
  messages: OpenAiMessage[];
}

async function imageUrl(relative: string, imageRoot: string, options: OpenAiEmitOptions, sampleId: string): Promise<string> {
  const absolute = path.join(imageRoot, relative);
  switch (options.imageUrl ?? 'relative') {
    case 'relative':
      return relative;
    case 'absolute':
      return absolute;
    case 'file-url':
      return pathToFileURL(absolute).href;
    case 'url-prefix': {
      await serviceImage(absolute, sampleId, false);
      const prefix = options.imageUrlPrefix as string;
      return `${prefix}${prefix.endsWith('/') ? '' : '/'}${relative.split('/').map(encodeURIComponent).join('/')}`;
    }
    case 'data-url': {
      const { bytes, mime } = await serviceImage(absolute, sampleId, true);
      return `data:${mime};base64,${bytes.toString('base64')}`;
    }
  }
}

export async function toOpenAiRecord(input: KeptTriplet | TrainingSample, options: OpenAiEmitOptions): Promise<OpenAiRecord> {
  const imageRoot = checkImageRoot(options?.imageRoot);
  const reference = options.imageUrl ?? 'relative';
  if (!['relative', 'absolute', 'file-url', 'data-url', 'url-prefix'].includes(reference)) {
    throw invalidArgument('relative, absolute, file-url, data-url or url-prefix', 'imageUrl', reference);
  }
  if (reference === 'url-prefix' && !(typeof options.imageUrlPrefix === 'string' && /^https?:\/\/\S+$/.test(options.imageUrlPrefix))) {
    throw invalidArgument('an http(s) URL prefix', 'imageUrlPrefix', options.imageUrlPrefix);
  }
  const sample = toTrainingSample(input);
  const messages: OpenAiMessage[] = [];
  for (const [i, { question, answer }] of sample.turns.entries()) {
    if (i === 0 && sample.image !== undefined) {
      const url = await imageUrl(relativeImagePath(sample.image, imageRoot, sample.id), imageRoot, options, sample.id);
      messages.push({ role: 'user', content: [{ type: 'image_url', image_url: { url } }, { type: 'text', text: question }] });
    } else {
      messages.push({ role: 'user', content: question });
    }
    messages.push({ role: 'assistant', content: answer });
  }
  return { messages };
}
