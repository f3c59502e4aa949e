/**
 * Deterministic test images: JPEGs of 640x480 (not square, so every peer pads), made by sharp
 * from a seeded pattern of coloured blocks, gradients and noise. The same count and seed give the
 * same pixels; files that already exist with the right name are reused.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { createRandom } from '../lib/srf/random.js';

export const IMAGE_WIDTH = 640;
export const IMAGE_HEIGHT = 480;

function pixels(seed: number): Buffer {
  const rand = createRandom(seed * 7919 + 17);
  const w = IMAGE_WIDTH;
  const h = IMAGE_HEIGHT;
  const buf = Buffer.alloc(w * h * 3);
  const base = [rand() * 255, rand() * 255, rand() * 255];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      buf[i] = (base[0] + (x * 255) / w) % 256;
      buf[i + 1] = (base[1] + (y * 255) / h) % 256;
      buf[i + 2] = base[2];
    }
  }
  // A dozen solid rectangles, then light noise so no two images share a pixel pattern.
  for (let r = 0; r < 12; r++) {
    const x0 = Math.floor(rand() * w);
    const y0 = Math.floor(rand() * h);
    const x1 = Math.min(w, x0 + 20 + Math.floor(rand() * 200));
    const y1 = Math.min(h, y0 + 20 + Math.floor(rand() * 160));
    const c = [rand() * 255, rand() * 255, rand() * 255];
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) {
        const i = (y * w + x) * 3;
        buf[i] = c[0];
        buf[i + 1] = c[1];
        buf[i + 2] = c[2];
      }
    }
  }
  for (let i = 0; i < buf.length; i++) buf[i] = Math.max(0, Math.min(255, buf[i] + Math.floor((rand() - 0.5) * 24)));
  return buf;
}

/** Writes `count` images (img-000.jpg, ...) into `dir` and returns their paths. */
export async function writeTestImages(dir: string, count: number, seed = 1): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const paths: string[] = [];
  for (let i = 0; i < count; i++) {
    const path = join(dir, `img-s${seed}-${String(i).padStart(3, '0')}.jpg`);
    if (!existsSync(path)) {
      await sharp(pixels(seed * 100003 + i), { raw: { width: IMAGE_WIDTH, height: IMAGE_HEIGHT, channels: 3 } })
        .jpeg({ quality: 90 })
        .toFile(path);
    }
    paths.push(path);
  }
  return paths;
}
