/**
 * OpenAI-style chat JSONL, one object per line, for trainers that read the chat-completions shape:
 *
 *     {"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"..."}},
 *                                            {"type":"text","text":"Q"}]},
 *                  {"role":"assistant","content":"A"}]}
 *
 * The image is referenced by a path (default, relative to imageRoot), a file:// URL, or inlined as a
 * data URL (OpenAI's own fine-tuning service takes only https or data URLs).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { SrfError, invalidArgument } from '../errors.js';
import { checkImageRoot, relativeImagePath, toTrainingSample, type KeptTriplet, type TrainingSample } from './sample.js';

export type OpenAiImageReference = 'relative' | 'absolute' | 'file-url' | 'data-url';

export interface OpenAiEmitOptions {
  imageRoot: string;
  /** How the image is referenced. Default 'relative'. */
  imageUrl?: OpenAiImageReference;
}

export type OpenAiContentPart = { type: 'image_url'; image_url: { url: string } } | { type: 'text'; text: string };

export interface OpenAiMessage {
  role: 'user' | 'assistant';
  content: string | OpenAiContentPart[];
}

export interface OpenAiRecord {
  messages: OpenAiMessage[];
}

const MIME_TYPES: Readonly<Record<string, string>> = {
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.png': 'image/png',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
};

async function imageUrl(relative: string, imageRoot: string, reference: OpenAiImageReference, sampleId: string): Promise<string> {
  const absolute = path.join(imageRoot, relative);
  switch (reference) {
    case 'relative':
      return relative;
    case 'absolute':
      return absolute;
    case 'file-url':
      return pathToFileURL(absolute).href;
    case 'data-url': {
      const mime = MIME_TYPES[path.extname(absolute).toLowerCase()];
      if (!mime) throw new SrfError('DATA_INVALID', `sample ${JSON.stringify(sampleId)}: no data-URL type for ${absolute}`, { file: absolute });
      let bytes: Buffer;
      try {
        bytes = await readFile(absolute);
      } catch (error) {
        throw new SrfError('FILE_UNREADABLE', `cannot read image of sample ${JSON.stringify(sampleId)}`, { file: absolute, cause: error });
      }
      return `data:${mime};base64,${bytes.toString('base64')}`;
    }
  }
}

export async function toOpenAiRecord(input: KeptTriplet | TrainingSample, options: OpenAiEmitOptions): Promise<OpenAiRecord> {
  const imageRoot = checkImageRoot(options?.imageRoot);
  const reference = options.imageUrl ?? 'relative';
  if (!['relative', 'absolute', 'file-url', 'data-url'].includes(reference)) {
    throw invalidArgument('relative, absolute, file-url or data-url', 'imageUrl', reference);
  }
  const sample = toTrainingSample(input);
  const messages: OpenAiMessage[] = [];
  for (const [i, { question, answer }] of sample.turns.entries()) {
    if (i === 0 && sample.image !== undefined) {
      const url = await imageUrl(relativeImagePath(sample.image, imageRoot, sample.id), imageRoot, reference, sample.id);
      messages.push({ role: 'user', content: [{ type: 'image_url', image_url: { url } }, { type: 'text', text: question }] });
    } else {
      messages.push({ role: 'user', content: question });
    }
    messages.push({ role: 'assistant', content: answer });
  }
  return { messages };
}
