/** A run.json as a finished run would leave it, for tests that write an output folder by hand. */
import { MANIFEST_FORMAT, type RunManifest } from '../../lib/outputs/manifest.js';

export function finishedManifest(fields: Partial<RunManifest> & Pick<RunManifest, 'round' | 'imageRoot'>): RunManifest {
  return {
    format: MANIFEST_FORMAT,
    tool: { name: 'srf-native', version: 'test' },
    status: 'complete',
    inputs: {},
    models: null,
    generation: null,
    scoring: null,
    selection: null,
    counts: null,
    timings: {},
    outputs: { journal: 'triplets.jsonl', train: {} },
    ...fields,
  };
}
