/**
 * Pictures the world's renderer did not draw: plain SVG written by hand (no noise, no shading, other
 * sizes, 256 px scaled down by the engine), as a user would try the demo model. One shape alone in
 * the middle at several sizes (its colour and shape asked), and two shapes side by side (which is on
 * the left). Prints how many the committed world model gets right.
 *
 *     node dist/training/world/other-pictures.js [MODEL_DIR]
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { VisionModel } from '../../lib/vision-model.js';
import { FORMAT_SUFFIXES } from '../../lib/srf/data-types.js';
import { normalizeForExactMatch } from '../../lib/srf/normalize.js';
import { worldModelPaths } from '../../lib/world/model-files.js';
import { COLOURS, SHAPES, type ColourName, type ShapeName } from '../../lib/world/scene.js';

const SIDE = 256;
const PLAIN: Readonly<Record<ColourName, string>> = { red: '#ff0000', green: '#00a000', blue: '#0000ff', yellow: '#ffdd00', purple: '#8000a0', orange: '#ff8000' };

function shape(kind: ShapeName, cx: number, cy: number, r: number, fill: string): string {
  switch (kind) {
    case 'circle':
      return `<circle cx="${cx}" cy="${cy}" r="${r}" fill="${fill}"/>`;
    case 'square':
      return `<rect x="${cx - r}" y="${cy - r}" width="${2 * r}" height="${2 * r}" fill="${fill}"/>`;
    case 'triangle':
      return `<polygon points="${cx},${cy - r} ${cx + r},${cy + 0.8 * r} ${cx - r},${cy + 0.8 * r}" fill="${fill}"/>`;
    case 'cross':
      return `<path d="M${cx - r} ${cy}H${cx + r}M${cx} ${cy - r}V${cy + r}" stroke="${fill}" stroke-width="${0.7 * r}"/>`;
    case 'star': {
      const p = Array.from({ length: 10 }, (_, i) => {
        const a = -Math.PI / 2 + (i * Math.PI) / 5;
        const rr = i % 2 ? r * 0.42 : r;
        return `${(cx + rr * Math.cos(a)).toFixed(1)},${(cy + rr * Math.sin(a)).toFixed(1)}`;
      });
      return `<polygon points="${p.join(' ')}" fill="${fill}"/>`;
    }
  }
}

async function png(dir: string, name: string, body: string, background = 'white'): Promise<string> {
  const file = path.join(dir, `${name}.png`);
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${SIDE}" height="${SIDE}"><rect width="100%" height="100%" fill="${background}"/>${body}</svg>`;
  await writeFile(file, await sharp(Buffer.from(svg)).png().toBuffer());
  return file;
}

interface Case {
  group: string;
  image: string;
  question: string;
  truth: string;
}

export async function otherPictureCases(dir: string): Promise<Case[]> {
  const cases: Case[] = [];
  const suffix = FORMAT_SUFFIXES.shortAnswer;
  for (const [k, scale] of [0.12, 0.2, 0.3].entries()) {
    for (const [i, kind] of SHAPES.entries()) {
      const colour = COLOURS[(i + 2 * k) % COLOURS.length]!;
      const image = await png(dir, `one-${kind}-${scale}`, shape(kind, SIDE / 2, SIDE / 2, scale * SIDE, PLAIN[colour]));
      cases.push({ group: `one shape, radius ${scale}: colour`, image, question: `What color is the ${kind}?\n${suffix}`, truth: colour });
      cases.push({ group: `one shape, radius ${scale}: shape`, image, question: `What shape is the ${colour} object?\n${suffix}`, truth: kind });
    }
  }
  for (let i = 0; i < SHAPES.length; i++) {
    const left = SHAPES[i]!;
    const right = SHAPES[(i + 2) % SHAPES.length]!;
    const [cl, cr] = [COLOURS[i % COLOURS.length]!, COLOURS[(i + 3) % COLOURS.length]!];
    const image = await png(dir, `pair-${i}`, shape(left, SIDE * 0.2, SIDE / 2, SIDE * 0.13, PLAIN[cl]) + shape(right, SIDE * 0.8, SIDE / 2, SIDE * 0.13, PLAIN[cr]));
    cases.push({ group: 'two side by side: where', image, question: `Where is the ${left}?\n${suffix}`, truth: 'left' });
    cases.push({ group: 'two side by side: where', image, question: `Where is the ${right}?\n${suffix}`, truth: 'right' });
  }
  return cases;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const dir = await mkdtemp(path.join(tmpdir(), 'world-other-'));
  const files = process.argv[2] ? worldModelPaths(process.argv[2]) : worldModelPaths();
  const cases = await otherPictureCases(dir);
  await using model = await VisionModel.open({ model: files.model, mmproj: files.mmproj, parallel: 8, threads: 1 });
  const replies = await Promise.all(cases.map((c) => model.generate({ image: c.image, prompt: c.question, sampling: { temperature: 0, maxTokens: 16 } })));
  const groups = new Map<string, { right: number; n: number; wrong: string[] }>();
  cases.forEach((c, i) => {
    const g = groups.get(c.group) ?? { right: 0, n: 0, wrong: [] };
    g.n++;
    if (normalizeForExactMatch(replies[i]!.text) === normalizeForExactMatch(c.truth)) g.right++;
    else g.wrong.push(`${c.truth}->${replies[i]!.text.trim()}`);
    groups.set(c.group, g);
  });
  for (const [name, g] of groups) console.log(`| ${name} | ${g.right}/${g.n} | ${g.wrong.slice(0, 4).join(', ')} |`);
}
