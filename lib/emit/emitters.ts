/**
 * The output formats, each an Emitter that knows its file name and writes samples as they come
 * (see record-file.ts: the file appears complete or not at all).
 */
import path from 'node:path';
import { invalidArgument, isSrfError } from '../errors.js';
import { isPlainObject } from '../util/validate.js';
import { toLlavaRecord } from './llava.js';
import { toOpenAiRecord, type OpenAiImageReference } from './openai.js';
import { RecordFileWriter, type RecordFileLayout } from './record-file.js';
import { checkImageRoot, type KeptTriplet, type TrainingSample } from './sample.js';
import { toShareGptRecord } from './sharegpt.js';

export const EMIT_FORMATS = ['llava', 'sharegpt', 'openai'] as const;
export type EmitFormat = (typeof EMIT_FORMATS)[number];

export interface EmitOptions {
  /** The folder images are referenced relative to (LLaVA's --image_folder, LLaMA-Factory's media_dir). */
  imageRoot: string;
  /** Replace an existing output file. Default false. */
  overwrite?: boolean;
  /** Output file name instead of the emitter's default. */
  fileName?: string;
  /** openai only: how images are referenced. Default 'relative'. */
  imageUrl?: OpenAiImageReference;
  /** openai only, with imageUrl 'url-prefix': the URL the image root is served at. */
  imageUrlPrefix?: string;
}

/**
 * Samples a writer left out because their image cannot go into the file: a format the target does not
 * take (IMAGE_FORMAT_UNSUPPORTED), or, where the image is inlined, a file that cannot be read
 * (FILE_UNREADABLE). One such image does not cost the whole file.
 */
export interface DroppedSamples {
  count: number;
  /** The first few reasons, each naming its sample and file. */
  examples: string[];
}

/** The warning for a closed writer that left samples out, or undefined. */
export function droppedWarning(writer: EmitWriter): string | undefined {
  if (writer.dropped.count === 0) return undefined;
  return `${path.basename(writer.path)}: ${writer.dropped.count} samples left out, their image is unreadable or in a format the target does not take (${writer.dropped.examples.join('; ')})`;
}

export interface EmitWriter {
  readonly path: string;
  readonly count: number;
  readonly dropped: DroppedSamples;
  /** Writes the sample, or counts it as dropped when its image cannot go into this format (see DroppedSamples). */
  write(sample: KeptTriplet | TrainingSample): Promise<void>;
  /** Completes the file and moves it into place. */
  close(): Promise<{ path: string; count: number }>;
  /** Leaves no file behind. */
  abort(): Promise<void>;
}

export interface Emitter {
  readonly format: EmitFormat;
  /** Default file name in the output folder. */
  readonly fileName: string;
  readonly layout: RecordFileLayout;
  toRecord(sample: KeptTriplet | TrainingSample, options: EmitOptions): unknown | Promise<unknown>;
  open(outputDir: string, options: EmitOptions): Promise<EmitWriter>;
}

function makeEmitter(
  format: EmitFormat,
  fileName: string,
  layout: RecordFileLayout,
  toRecord: (sample: KeptTriplet | TrainingSample, options: EmitOptions) => unknown | Promise<unknown>,
): Emitter {
  return Object.freeze({
    format,
    fileName,
    layout,
    toRecord,
    async open(outputDir: string, options: EmitOptions): Promise<EmitWriter> {
      if (typeof outputDir !== 'string' || outputDir === '') throw invalidArgument('a folder path', 'outputDir', outputDir);
      if (!isPlainObject(options as unknown)) throw invalidArgument('an object with imageRoot', 'options', options);
      checkImageRoot(options.imageRoot);
      const name = options.fileName ?? fileName;
      if (typeof name !== 'string' || name === '' || path.basename(name) !== name) {
        throw invalidArgument('a plain file name', 'fileName', name);
      }
      const file = await RecordFileWriter.open(path.join(outputDir, name), layout, { overwrite: options.overwrite ?? false });
      const dropped: DroppedSamples = { count: 0, examples: [] };
      return {
        path: file.path,
        get count() {
          return file.count;
        },
        dropped,
        async write(sample) {
          let record: unknown;
          try {
            record = await toRecord(sample, options);
          } catch (error) {
            if (!isSrfError(error, 'IMAGE_FORMAT_UNSUPPORTED') && !isSrfError(error, 'FILE_UNREADABLE')) throw error;
            dropped.count++;
            if (dropped.examples.length < 3) dropped.examples.push(error.message);
            return;
          }
          await file.write(record);
        },
        close: () => file.close(),
        abort: () => file.abort(),
      };
    },
  });
}

export const EMITTERS: Readonly<Record<EmitFormat, Emitter>> = Object.freeze({
  llava: makeEmitter('llava', 'train.llava.json', 'json-array', toLlavaRecord),
  sharegpt: makeEmitter('sharegpt', 'train.sharegpt.json', 'json-array', toShareGptRecord),
  openai: makeEmitter('openai', 'train.openai.jsonl', 'jsonl', (sample, options) =>
    toOpenAiRecord(sample, {
      imageRoot: options.imageRoot,
      ...(options.imageUrl === undefined ? {} : { imageUrl: options.imageUrl }),
      ...(options.imageUrlPrefix === undefined ? {} : { imageUrlPrefix: options.imageUrlPrefix }),
    }),
  ),
});

export function isEmitFormat(value: unknown): value is EmitFormat {
  return typeof value === 'string' && (EMIT_FORMATS as readonly string[]).includes(value);
}
