/**
 * Draws a scene: an SVG of the shapes in their drawing order (later over earlier: occlusion),
 * rasterised by sharp, then seeded per-pixel noise, encoded as PNG. Same scene and size, same bytes.
 */
import sharp from 'sharp';
import { createRandom } from '../srf/random.js';
import { RADIUS, RGB, type Scene, type SceneObject } from './scene.js';

function polygon(points: Array<[number, number]>): string {
  return points.map(([x, y]) => `${x.toFixed(3)},${y.toFixed(3)}`).join(' ');
}

/** One shape as SVG in pixel units; its extent matches objectBox (scene.ts). */
export function shapeSvg(object: SceneObject, size: number): string {
  const r = RADIUS[object.size] * size;
  const cx = object.x * size;
  const cy = object.y * size;
  const fill = `rgb(${object.rgb.join(',')})`;
  switch (object.shape) {
    case 'circle':
      return `<circle cx="${cx}" cy="${cy}" r="${r}" fill="${fill}"/>`;
    case 'square':
      return `<rect x="${cx - r}" y="${cy - r}" width="${2 * r}" height="${2 * r}" fill="${fill}"/>`;
    case 'triangle':
      return `<polygon points="${polygon([[cx, cy - r], [cx + r, cy + 0.75 * r], [cx - r, cy + 0.75 * r]])}" fill="${fill}"/>`;
    case 'cross': {
      const w = r * 0.38;
      return `<rect x="${cx - w}" y="${cy - r}" width="${2 * w}" height="${2 * r}" fill="${fill}"/><rect x="${cx - r}" y="${cy - w}" width="${2 * r}" height="${2 * w}" fill="${fill}"/>`;
    }
    case 'star': {
      const points: Array<[number, number]> = [];
      for (let i = 0; i < 10; i++) {
        const angle = -Math.PI / 2 + (i * Math.PI) / 5;
        const radius = i % 2 === 0 ? r : r * 0.45;
        points.push([cx + radius * Math.cos(angle), cy + radius * Math.sin(angle)]);
      }
      // The outer points span x in cx +- 0.95 r and reach 0.81 r below the centre.
      return `<polygon points="${polygon(points)}" fill="${fill}"/>`;
    }
  }
}

export function sceneSvg(scene: Scene, size: number, objects: readonly SceneObject[] = scene.objects): string {
  const background = `rgb(${RGB[scene.background].join(',')})`;
  const body = objects.map((o) => shapeSvg(o, size)).join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}"><rect width="100%" height="100%" fill="${background}"/>${body}</svg>`;
}

export interface RenderOptions {
  /** Side in pixels. Default 64 (the world model's image size). */
  size?: number;
  /** Draw only these objects (default all), e.g. to find where one object is visible. */
  objects?: readonly SceneObject[];
  /** Add the scene's noise. Default true. */
  noise?: boolean;
}

/** The scene as 8-bit RGB pixels (row-major, size x size x 3). */
export async function renderSceneRgb(scene: Scene, options: RenderOptions = {}): Promise<Uint8Array> {
  const size = options.size ?? 64;
  const { data } = await sharp(Buffer.from(sceneSvg(scene, size, options.objects ?? scene.objects)))
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  const rgb = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (options.noise ?? true) addNoise(rgb, scene.noise, scene.seed);
  return rgb;
}

/** Seeded, roughly Gaussian noise (sum of three uniforms), clamped to 0..255. */
function addNoise(rgb: Uint8Array, sigma: number, seed: number): void {
  const random = createRandom(seed ^ 0x0a15e);
  const scale = sigma * 2; // the sum of three uniforms in [-0.5, 0.5) has standard deviation 0.5
  for (let i = 0; i < rgb.length; i++) {
    const n = (random() + random() + random() - 1.5) * scale;
    rgb[i] = Math.max(0, Math.min(255, Math.round((rgb[i] as number) + n)));
  }
}

/** The scene as PNG bytes. */
export async function renderScenePng(scene: Scene, options: RenderOptions = {}): Promise<Buffer> {
  const size = options.size ?? 64;
  const rgb = await renderSceneRgb(scene, options);
  return sharp(Buffer.from(rgb), { raw: { width: size, height: size, channels: 3 } }).png({ compressionLevel: 9 }).toBuffer();
}
