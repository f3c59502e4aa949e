/**
 * LLaMA-Factory's ShareGPT-style multimodal format (its data/README.md and the `mllm_demo` dataset):
 *
 *     [{ "messages": [{"role": "user", "content": "<image>Who are they?"},
 *                     {"role": "assistant", "content": "They're ..."}],
 *        "images": ["mllm_demo_data/1.jpg"] }]
 *
 * registered in dataset_info.json with `"formatting": "sharegpt"`, columns `messages`/`images` and
 * tags role/content/user/assistant (see shareGptDatasetInfo). LLaMA-Factory requires as many `<image>`
 * markers as images; it resolves relative image paths against `media_dir` (default: the dataset
 * folder), so point media_dir at the imageRoot used here. The marker has no newline after it,
 * as in mllm_demo; LLaMA-Factory's template puts the image tokens there itself.
 */
import { IMAGE_TOKEN } from '../engine/llava-prompt.js';
import { checkImageRoot, relativeImagePath, toTrainingSample, type KeptTriplet, type TrainingSample } from './sample.js';

export interface ShareGptEmitOptions {
  imageRoot: string;
}

export interface ShareGptMessage {
  role: 'user' | 'assistant';
  content: string;
}

export interface ShareGptRecord {
  messages: ShareGptMessage[];
  /** Absent for text-only samples. */
  images?: string[];
}

export function toShareGptRecord(input: KeptTriplet | TrainingSample, options: ShareGptEmitOptions): ShareGptRecord {
  const imageRoot = checkImageRoot(options?.imageRoot);
  const sample = toTrainingSample(input);
  const record: ShareGptRecord = { messages: [] };
  sample.turns.forEach(({ question, answer }, i) => {
    const content = i === 0 && sample.image !== undefined ? `${IMAGE_TOKEN}${question}` : question;
    record.messages.push({ role: 'user', content }, { role: 'assistant', content: answer });
  });
  if (sample.image !== undefined) record.images = [relativeImagePath(sample.image, imageRoot, sample.id)];
  return record;
}

/** The dataset_info.json entry that makes LLaMA-Factory read a file written by this emitter. */
export function shareGptDatasetInfo(fileName: string): Record<string, unknown> {
  return {
    file_name: fileName,
    formatting: 'sharegpt',
    columns: { messages: 'messages', images: 'images' },
    tags: { role_tag: 'role', content_tag: 'content', user_tag: 'user', assistant_tag: 'assistant' },
  };
}
