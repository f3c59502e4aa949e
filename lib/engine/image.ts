/**
 * Images as the model family needs them, decoded by sharp (every format it reads, first frame of
 * animations, EXIF orientation applied, grayscale / 16-bit / palette / alpha made 8-bit RGB):
 * for LLaVA-1.5 (and MobileVLM) as they saw them in training, padded to a square with the CLIP mean
 * colour and resized to the vision encoder's size; for the other families at their real size
 * ('native'), which mtmd preprocesses as the family does (Qwen's dynamic resolution, tiles, Gemma 3's
 * fixed size).
 */
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import sharp from 'sharp';
import { SrfError } from '../errors.js';
import type { ImageInput, PreparedImage } from './types.js';

/** CLIP's mean, as 8-bit RGB: LLaVA's `expand2square` background. */
export const CLIP_MEAN_RGB = { r: 122, g: 116, b: 104 } as const;

/** Larger inputs are refused before decoding (sharp's own default limit, about 16384 x 16384). */
export const MAX_INPUT_PIXELS = 268_402_689;

export function isPreparedImage(value: unknown): value is PreparedImage {
  return typeof value === 'object' && value !== null && (value as PreparedImage).kind === 'prepared-image';
}

/**
 * The longest side a 'native' image keeps: larger ones are scaled down first, so that a huge photo
 * does not cross into the engine as hundreds of MB of pixels (mtmd scales every family's images
 * far below this anyway).
 */
export const MAX_NATIVE_SIDE = 4096;

/** `size`: the square side the model takes, or 'native' for the image's own size. */
export async function prepareImage(input: ImageInput, size: number | 'native'): Promise<PreparedImage> {
  const native = size === 'native';
  if (isPreparedImage(input)) {
    const preparedFor = input.size === 0 ? 'its own size' : `${input.size} px`;
    if ((native && input.size !== 0) || (!native && input.size !== size)) {
      throw new SrfError('INVALID_ARGUMENT', `${input.source}: prepared for ${preparedFor} but the model takes ${native ? 'images at their own size' : `${size} px`}`);
    }
    return input;
  }
  if (!native && !(Number.isInteger(size) && size > 0)) throw new SrfError('INVALID_ARGUMENT', `Expected a positive integer or 'native' for size but received ${String(size)}`);
  const source = typeof input === 'string' ? input : '<buffer>';
  if (typeof input === 'string') {
    let info;
    try {
      info = await stat(input);
    } catch {
      throw new SrfError('FILE_NOT_FOUND', 'image file not found', { file: input });
    }
    if (!info.isFile()) throw new SrfError('IMAGE_UNREADABLE', 'not a regular file', { file: input });
    if (info.size === 0) throw new SrfError('IMAGE_EMPTY', 'the image file is empty (0 bytes)', { file: input });
  } else if (!(input instanceof Uint8Array)) {
    throw new SrfError('INVALID_ARGUMENT', `Expected a file path, a Uint8Array or a prepared image but received ${typeof input}`);
  } else if (input.byteLength === 0) {
    throw new SrfError('IMAGE_EMPTY', 'the image buffer is empty (0 bytes)');
  }

  try {
    const decoded = sharp(input, { limitInputPixels: MAX_INPUT_PIXELS, failOn: 'error', pages: 1 }).rotate(); // EXIF orientation
    const pipeline = native
      ? // alpha dropped as llama.cpp's image loader (stb_image, 3 channels) drops it
        decoded.toColourspace('srgb').resize(MAX_NATIVE_SIDE, MAX_NATIVE_SIDE, { fit: 'inside', withoutEnlargement: true, kernel: 'cubic' })
      : decoded
          .flatten({ background: CLIP_MEAN_RGB }) // alpha onto the same colour as the padding
          .toColourspace('srgb')
          .resize(size, size, { fit: 'contain', background: CLIP_MEAN_RGB, kernel: 'cubic' });
    const { data, info } = await pipeline.removeAlpha().raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    if (info.channels !== 3 || data.length !== info.width * info.height * 3 || (!native && (info.width !== size || info.height !== size))) {
      throw new SrfError('IMAGE_UNREADABLE', `decoded to ${info.channels} channels, expected RGB`, { file: source });
    }
    const rgb = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const meta = await sharp(input, { limitInputPixels: MAX_INPUT_PIXELS, pages: 1 }).metadata();
    const rotated = (meta.orientation ?? 1) >= 5;
    return {
      kind: 'prepared-image',
      source,
      size: native ? 0 : size,
      nx: info.width,
      ny: info.height,
      rgb,
      hash: createHash('sha256').update(rgb).digest('hex'),
      width: (rotated ? meta.height : meta.width) ?? 0,
      height: (rotated ? meta.width : meta.height) ?? 0,
    };
  } catch (cause) {
    if (cause instanceof SrfError) throw cause;
    const message = (cause as Error).message ?? String(cause);
    if (/pixel limit/i.test(message)) {
      throw new SrfError('IMAGE_TOO_LARGE', `the image is larger than ${MAX_INPUT_PIXELS} pixels (${message})`, { file: source, cause });
    }
    throw new SrfError('IMAGE_UNREADABLE', `not a readable image: ${message}`, { file: source, cause });
  }
}
