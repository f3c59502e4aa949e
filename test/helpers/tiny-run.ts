/** Shared by the pipeline tests that run refine() on the tiny random model: its files, images and options. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFixtures, type FixtureSet } from '../../fixtures/gguf/fixtures.js';
import { DEMO_SETTINGS } from '../../lib/jobs/demo.js';
import type { TripletLine } from '../../lib/outputs/journal.js';
import type { RefineOptions } from '../../lib/jobs/refine.js';
import { parseJsonLines, writeImages } from './cli.js';
import { tempDir } from './fixtures.js';

// The random tiny model writes short replies under a short grammar (what the demo used before it ran
// on the world model): quick, and every reply parses.
export const SHORT_GRAMMAR = [
  'root ::= "Question: " qline suffix? "\\nAnswer: " answer',
  'qline ::= [^\\r\\n ] [^\\r\\n]{0,47}',
  'suffix ::= "\\nAnswer the question using a single word or phrase."',
  'answer ::= [^\\r\\n ] [^\\r\\n]{0,47}',
  '',
].join('\n');
export const SHORT_DECODING = { iToQa: { maxTokens: 160 }, iaToQ: { maxTokens: 32 }, iqToA: { maxTokens: 32 } };

/** The lines of an output folder's triplets.jsonl. */
export async function readJournal(out: string): Promise<TripletLine[]> {
  return parseJsonLines(await readFile(join(out, 'triplets.jsonl'), 'utf8')) as TripletLine[];
}

/**
 * A temp folder with the tiny LLaVA pair (seed 5) and these images under images/, and the refine()
 * options for them (out/ beside them, 2 sequences, 1 thread, the demo's grammar and decoding, top
 * 50 % kept, no report), changed by `overrides`.
 */
export async function tinyRun(names: string[], overrides: Partial<RefineOptions> = {}): Promise<{ dir: string; models: FixtureSet; base: RefineOptions }> {
  const dir = await tempDir();
  const models = await writeFixtures(join(dir, 'models'), { llava: 'tiny', seed: 5 });
  await writeImages(join(dir, 'images'), names);
  const base: RefineOptions = {
    model: models.model,
    mmproj: models.mmproj,
    images: join(dir, 'images'),
    out: join(dir, 'out'),
    parallel: 2,
    threads: 1,
    grammar: DEMO_SETTINGS.grammar,
    decoding: DEMO_SETTINGS.decoding,
    keepTop: 0.5,
    report: false,
    ...overrides,
  };
  return { dir, models, base };
}
