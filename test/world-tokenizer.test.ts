// The world model's training side tokenizes exactly as llama.cpp does: fixtures/gguf/spm-tokenizer.ts
// against llama.cpp's own tokenizer (node-llama-cpp's build, on the committed model's vocabulary),
// on the whole training corpus, and the committed vocabulary is the one the corpus gives.
import path from 'node:path';
import t from 'tap';
import { getLlama, LlamaLogLevel } from 'node-llama-cpp';
import { metaArray, readGgufInfo } from '../lib/gguf/reader.js';
import { SpmTokenizer } from '../fixtures/gguf/spm-tokenizer.js';
import { buildMultiTaskData } from '../lib/srf/tasks.js';
import { buildWorldData } from '../lib/world/dataset.js';
import { worldModelPaths } from '../lib/world/model-files.js';
import { WORLD_MODEL } from '../training/world/config.js';
import { promptTexts, tokenizeRecord } from '../training/world/make-data.js';
import { learnVocab } from '../training/world/vocab.js';

const files = worldModelPaths();
const info = await readGgufInfo(files.model);
const vocab = {
  tokens: metaArray(info, 'tokenizer.ggml.tokens') as string[],
  scores: metaArray(info, 'tokenizer.ggml.scores') as number[],
  tokenTypes: metaArray(info, 'tokenizer.ggml.token_type') as number[],
};
const tokenizer = new SpmTokenizer(vocab);

// The corpus exactly as training/world/make-data.ts builds it (srf-native tasks' draw, seed 0).
const world = buildWorldData({ count: WORLD_MODEL.trainImages, firstSeed: 0, questionSeed: 1 });
const records = buildMultiTaskData(world.records, { seed: 0 }).records;
const texts = records.map(promptTexts);

t.test('the committed vocabulary is the one learned from the corpus', async (t) => {
  const learned = learnVocab(
    (function* () {
      for (const x of texts) {
        yield ` ${x.pre}`;
        if (x.post !== '') yield ` ${x.post}`;
        yield x.target;
      }
    })(),
    WORLD_MODEL.vocabSize,
  );
  t.same(learned.tokens, vocab.tokens);
  t.same([...learned.scores], vocab.scores);
  t.same([...learned.tokenTypes], vocab.tokenTypes);
});

t.test('every text of the corpus tokenizes as llama.cpp tokenizes it', async (t) => {
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath: files.model, vocabOnly: true });
  t.teardown(() => model.dispose());
  const llamaTokens = (text: string) => model.tokenize(text, false).map(Number);
  const newline = tokenizer.tokenize('\n');
  let compared = 0;
  let differ = 0;
  const seen = new Set<string>();
  for (const x of texts) {
    // Prompt parts: llama_tokenize as the engine calls it (space prefix; <s> is added by mtmd, not compared here).
    for (const text of [x.pre, x.post]) {
      if (text === '' || seen.has(text)) continue;
      seen.add(text);
      compared++;
      if (JSON.stringify(tokenizer.tokenize(text)) !== JSON.stringify(llamaTokens(text))) {
        if (differ++ < 5) t.fail(`prompt text ${JSON.stringify(text)}`);
      }
    }
    // Targets continue after "ASSISTANT:" without a space prefix. llama.cpp's merges never cross a
    // newline (no piece holds one), so its tokens of "\n" + target, after those of "\n", are the target's.
    if (seen.has(`target:${x.target}`)) continue;
    seen.add(`target:${x.target}`);
    compared++;
    const viaLlama = llamaTokens(`\n${x.target}`);
    const head = viaLlama.slice(0, newline.length);
    const ours = tokenizer.tokenize(x.target, { addSpacePrefix: false });
    if (JSON.stringify(head) !== JSON.stringify(newline) || JSON.stringify(viaLlama.slice(newline.length)) !== JSON.stringify(ours)) {
      if (differ++ < 5) t.fail(`target ${JSON.stringify(x.target)}`);
    }
  }
  t.equal(differ, 0, `${compared} distinct texts of ${texts.length} records, all identical`);
  t.ok(compared > 2000, `${compared} distinct texts compared`);
});

t.test('training tokens are what the engine feeds: <s>, prompt, target, </s>', async (t) => {
  const sample = records.find((r) => r.image !== undefined)!;
  const tokens = tokenizeRecord(tokenizer, promptTexts(sample));
  t.equal(tokens.pre[0], tokenizer.bos);
  t.equal(tokens.target[tokens.target.length - 1], tokenizer.eos);
  t.equal(tokenizer.decode(tokens.target.slice(0, -1)), sample.conversations[1]!.value);
  t.equal(path.basename(files.model), 'world-llava-model-f16.gguf');
});
