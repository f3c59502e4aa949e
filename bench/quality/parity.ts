/**
 * Does the engine, with the exported adapter and mmproj, answer as the fine-tuned PyTorch model does?
 * finetune_lora.py writes the model's greedy replies to the first image records of its training data;
 * here the engine answers the same questions on the same images (IQ->A, greedy) and the texts are compared.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { SpmTokenizer } from '../../fixtures/gguf/spm-tokenizer.js';
import { VisionModel } from '../../lib/vision-model.js';
import { stripImageToken } from '../../lib/engine/llava-prompt.js';
import type { MultiTaskRecord } from '../../lib/srf/tasks.js';
import { readGgufVocab } from './gguf-weights.js';
import type { ModelFiles } from './vqa.js';

export interface ParityResult {
  cases: number;
  equal: number;
  mismatches: Array<{ question: string; torch: string; engine: string }>;
}

export async function checkParity(trainDir: string, tasksFile: string, imageRoot: string, files: ModelFiles): Promise<ParityResult> {
  const reference = JSON.parse(await readFile(path.join(trainDir, 'reference.json'), 'utf8')) as { cases: Array<{ record: number; tokens: number[] }> };
  const records = JSON.parse(await readFile(tasksFile, 'utf8')) as MultiTaskRecord[];
  const tokenizer = new SpmTokenizer(await readGgufVocab(files.model));
  const model = await VisionModel.open({ model: files.model, mmproj: files.mmproj, ...(files.lora ? { loras: [{ path: files.lora }] } : {}), parallel: 4, threads: 1 });
  try {
    const asks = reference.cases.map((c) => {
      const record = records[c.record]!;
      return { image: path.resolve(imageRoot, record.image!), question: stripImageToken(record.conversations[0]!.value) };
    });
    const replies = await model.questionToAnswer(asks, { sampling: { maxTokens: 48 } });
    const result: ParityResult = { cases: asks.length, equal: 0, mismatches: [] };
    replies.forEach((reply, i) => {
      const torch = tokenizer.decode(reference.cases[i]!.tokens);
      const engine = reply.ok ? reply.text : `(error ${reply.error.code})`;
      if (torch.trim() === engine.trim()) result.equal++;
      else result.mismatches.push({ question: asks[i]!.question, torch, engine });
    });
    return result;
  } finally {
    await model.close();
  }
}
