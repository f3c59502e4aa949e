// Image preparation as LLaVA-1.5 trained: every sharp format, EXIF orientation, bit depths,
// alpha, first frame, padded to a square with the CLIP mean colour, resized, RGB.
import t from 'tap';
import sharp from 'sharp';
import { prepareImage, CLIP_MEAN_RGB } from '../lib/engine/image.js';

const size = 56;
const pixel = (rgb: Uint8Array, x: number, y: number) => Array.from(rgb.subarray((y * size + x) * 3, (y * size + x) * 3 + 3));
const near = (a: number[], b: number[], tol = 3) => a.every((v, i) => Math.abs(v - b[i]!) <= tol);
const mean = [CLIP_MEAN_RGB.r, CLIP_MEAN_RGB.g, CLIP_MEAN_RGB.b];

t.test('a wide image is padded top and bottom with the CLIP mean colour', async (t) => {
  const png = await sharp({ create: { width: 80, height: 40, channels: 3, background: '#ff0000' } }).png().toBuffer();
  const img = await prepareImage(png, size);
  t.equal(img.rgb.length, size * size * 3);
  t.equal(img.width, 80);
  t.equal(img.height, 40);
  t.ok(near(pixel(img.rgb, 28, 1), mean), 'top band is the mean colour');
  t.ok(near(pixel(img.rgb, 28, 54), mean), 'bottom band is the mean colour');
  t.ok(near(pixel(img.rgb, 28, 28), [255, 0, 0]), 'the picture is in the middle');
  t.match(img.hash, /^[0-9a-f]{64}$/);
});

t.test('EXIF orientation is applied', async (t) => {
  // 20 x 40 (tall): left half red, right half blue; tagged "rotate 90 CW" (orientation 6).
  const raw = Buffer.alloc(20 * 40 * 3);
  for (let y = 0; y < 40; y++) for (let x = 0; x < 20; x++) raw.set(x < 10 ? [255, 0, 0] : [0, 0, 255], (y * 20 + x) * 3);
  const jpeg = await sharp(raw, { raw: { width: 20, height: 40, channels: 3 } }).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer();
  const img = await prepareImage(jpeg, size);
  t.equal(img.width, 40, 'shown wide after rotation');
  t.equal(img.height, 20);
  // Rotated 90 CW: the red (left) half ends up on top.
  const top = pixel(img.rgb, 28, 18);
  const bottom = pixel(img.rgb, 28, 38);
  t.ok(top[0]! > 150 && top[2]! < 100, `top is red: ${top}`);
  t.ok(bottom[2]! > 150 && bottom[0]! < 100, `bottom is blue: ${bottom}`);
});

t.test('grayscale, 16-bit, palette and alpha become 8-bit RGB', async (t) => {
  const gray = await sharp({ create: { width: 30, height: 30, channels: 3, background: '#808080' } }).grayscale().png().toBuffer();
  const g = await prepareImage(gray, size);
  t.ok(near(pixel(g.rgb, 28, 28), [128, 128, 128]));

  const sixteen = await sharp({ create: { width: 30, height: 30, channels: 3, background: '#00ff00' } }).toColourspace('rgb16').png().toBuffer();
  t.equal((await sharp(sixteen).metadata()).depth, 'ushort', 'fixture is 16-bit');
  t.ok(near(pixel((await prepareImage(sixteen, size)).rgb, 28, 28), [0, 255, 0]));

  const palette = await sharp({ create: { width: 30, height: 30, channels: 3, background: '#0000ff' } }).png({ palette: true }).toBuffer();
  t.equal((await sharp(palette).metadata()).isPalette, true, 'fixture is a palette PNG');
  t.ok(near(pixel((await prepareImage(palette, size)).rgb, 28, 28), [0, 0, 255]));

  const transparent = await sharp({ create: { width: 30, height: 30, channels: 4, background: { r: 255, g: 255, b: 255, alpha: 0 } } }).png().toBuffer();
  t.ok(near(pixel((await prepareImage(transparent, size)).rgb, 28, 28), mean), 'transparent areas take the padding colour');
});

t.test('animations use their first frame; formats sharp reads all work', async (t) => {
  const frame = (hex: string) => sharp({ create: { width: 24, height: 24, channels: 3, background: hex } }).raw().toBuffer();
  const frames = Buffer.concat([await frame('#ff0000'), await frame('#0000ff')]);
  const webpAnim = await sharp(frames, { raw: { width: 24, height: 24 * 2, channels: 3, pageHeight: 24 } as never }).webp().toBuffer();
  t.equal((await sharp(webpAnim, { pages: -1 }).metadata()).pages, 2, 'fixture has two frames');
  const first = await prepareImage(webpAnim, size);
  t.ok(near(pixel(first.rgb, 28, 28), [255, 0, 0], 20), `first frame (red): ${pixel(first.rgb, 28, 28)}`);
  for (const format of ['jpeg', 'png', 'webp', 'tiff', 'gif', 'avif'] as const) {
    const buf = await sharp({ create: { width: 16, height: 16, channels: 3, background: '#888888' } })[format]().toBuffer();
    const img = await prepareImage(buf, size);
    t.equal(img.rgb.length, size * size * 3, format);
  }
});

t.test('the same pixels give the same hash; different pixels another', async (t) => {
  const a = await sharp({ create: { width: 10, height: 10, channels: 3, background: '#123456' } }).png().toBuffer();
  const b = await sharp({ create: { width: 10, height: 10, channels: 3, background: '#123457' } }).png().toBuffer();
  const jpegOfA = await sharp(a).png({ compressionLevel: 1 }).toBuffer();
  t.equal((await prepareImage(a, size)).hash, (await prepareImage(jpegOfA, size)).hash);
  t.not((await prepareImage(a, size)).hash, (await prepareImage(b, size)).hash);
});
