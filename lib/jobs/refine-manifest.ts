/**
 * A refine run's run.json as it starts (status 'running'): the command, inputs, models, generation
 * and scoring settings, the filter, the engine and its GPU side, the identity a resume must match.
 * Counts, selection, outputs and timings are filled in as the run goes and when it ends (refine.ts).
 */
import { buildInfo } from '../engine/native.js';
import { gpuRecord } from '../engine/gpu-notes.js';
import { JOURNAL_FILE } from '../outputs/journal.js';
import { MANIFEST_FORMAT, type RunCounts, type RunManifest } from '../outputs/manifest.js';
import { toolVersion } from '../outputs/version.js';
import { FILTERS } from '../srf/filters.js';
import { templateStrings } from '../srf/prompts.js';
import { SAMPLED_REANSWER } from '../srf/triangle.js';
import type { VisionModel } from '../vision-model.js';
import { formatShard } from './inputs.js';
import type { ResolvedOptions, RefineOptions, RunIdentity, RunSetup } from './refine-options.js';
import type { Scorer } from './scoring.js';

export interface ManifestStart {
  started: number;
  setup: RunSetup;
  identity: RunIdentity;
  previous: RunManifest | null;
  scorer: Scorer;
  model: VisionModel;
  options: RefineOptions;
  resolved: ResolvedOptions;
  counts: RunCounts;
  idHexDigits: number;
}

export function startManifest(s: ManifestStart): RunManifest {
  const o = s.options;
  const r = s.resolved;
  const { source, models } = s.setup;
  const info = buildInfo();
  return {
    format: MANIFEST_FORMAT,
    tool: { name: 'srf-native', version: toolVersion() },
    status: 'running',
    command: o.command ?? [],
    round: r.round,
    imageRoot: source.imageRoot,
    imagePaths: 'every image path in triplets.jsonl and the training data is relative to imageRoot (LLaVA\'s --image_folder)',
    inputs: {
      kind: source.kind,
      spec: source.spec,
      location: source.location,
      ...(source.pattern ? { pattern: source.pattern } : {}),
      shard: r.shard ? formatShard(r.shard) : null,
      shardRule: source.kind === 'shards' ? 'every N-th shard file of the sorted list, from the I-th' : 'sha1(relative path) first 32 bits mod N',
      ...(source.kind === 'rescore' ? { rescore: 'the scored triplets of the run whose journal is `location`, their questions and answers kept, judged again by this run\'s model', earlierImageRoot: source.earlierImageRoot } : {}),
      limit: r.limit ?? null,
    },
    models,
    generation: {
      seed: r.seed,
      seedRule: 'I->QA seed of an image = (seed + key) mod 2^32, key = bits 96..127 of sha1(relative path)',
      grammar: r.grammar === undefined ? false : typeof o.grammar === 'string' ? 'custom' : true,
      grammarBounds: typeof o.grammar === 'string' ? null : o.grammarBounds ?? {},
      ...(typeof o.grammar === 'string' ? { grammarText: o.grammar } : {}),
      templates: templateStrings(r.templates),
      decoding: r.sampling,
      ...(r.samples > 0 ? { sampledReanswers: { count: r.samples, decoding: SAMPLED_REANSWER, seedRule: 'the i-th (from 1) re-answer of a triplet is seeded (its I->QA seed + i) mod 2^32' } } : {}),
      parallel: r.parallel,
      inFlight: r.inFlight,
      contextSize: s.model.info.contextSize,
      kvLayout: s.model.info.kvLayout,
      prefixCache: s.model.info.prefixCache,
      gpuLayers: o.gpuLayers ?? 'all when a GPU is present',
      devices: s.model.info.devices,
      threads: o.threads ?? 'all cores but one',
    },
    scoring: s.scorer.record,
    filter: { name: r.filter, ...FILTERS[r.filter], minScore: FILTERS[r.filter].minScore ?? null },
    selection: s.previous?.selection ?? null,
    counts: s.counts,
    timings: { ...(s.previous?.timings ?? {}), startedAt: new Date(s.started).toISOString() },
    outputs: s.previous?.outputs ?? { journal: JOURNAL_FILE, train: {} },
    engine: { backend: info.backend, llamaCppVersion: info.llamaCppVersion, gpu: gpuRecord(info), model: { ...s.model.info, files: undefined } },
    identity: s.identity,
    idHexDigits: s.idHexDigits,
  };
}
