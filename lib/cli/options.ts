/** Parsing of the option values yargs leaves as strings: --lora FILE[:SCALE], --gpu, --format, --ratios. */
import { SrfError, invalidArgument } from '../errors.js';
import { EMIT_FORMATS, isEmitFormat, type EmitFormat } from '../emit/emitters.js';
import type { OpenAiImages } from '../emit/openai.js';
import type { SelectionSettings } from '../outputs/finalize.js';
import type { TaskRatios } from '../srf/tasks.js';
import type { LoraAdapterOptions } from '../engine/types.js';

/** `FILE[:SCALE]`; the part after the last colon is a scale only when it is a number (Windows drive letters stay). */
export function parseLoraSpec(spec: string): LoraAdapterOptions {
  if (typeof spec !== 'string' || spec === '') throw invalidArgument('FILE[:SCALE]', '--lora', spec);
  const colon = spec.lastIndexOf(':');
  if (colon > 0) {
    const tail = spec.slice(colon + 1);
    if (/^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(tail)) {
      const scale = Number(tail);
      if (!Number.isFinite(scale)) throw invalidArgument('a finite scale', '--lora', spec);
      return { path: spec.slice(0, colon), scale };
    }
  }
  return { path: spec };
}

export interface GpuSetting {
  gpuLayers?: number;
  gpuVision?: boolean;
}

/** `--gpu on|all` (every layer), `off|none|cpu` (none, vision encoder on the CPU too), or a layer count. */
export function parseGpu(value: string | number | undefined): GpuSetting {
  if (value === undefined) return {};
  const text = String(value).trim().toLowerCase();
  if (text === 'on' || text === 'all' || text === 'auto') return { gpuLayers: -1 };
  if (text === 'off' || text === 'none' || text === 'cpu') return { gpuLayers: 0, gpuVision: false };
  const layers = Number(text);
  if (text !== '' && Number.isInteger(layers) && layers >= -1) return { gpuLayers: layers };
  throw invalidArgument('on, off or a number of layers', '--gpu', value);
}

/** Repeatable and comma-separated: `--format sharegpt --format openai` or `--format sharegpt,openai`. */
export function parseFormats(values: readonly string[] | string | undefined): EmitFormat[] {
  const list = (Array.isArray(values) ? values : values === undefined ? [] : [values]).flatMap((v) => String(v).split(','));
  const formats: EmitFormat[] = [];
  for (const raw of list) {
    const format = raw.trim().toLowerCase();
    if (format === '') continue;
    if (!isEmitFormat(format)) throw invalidArgument(`one of ${EMIT_FORMATS.join(', ')}`, '--format', raw);
    if (!formats.includes(format)) formats.push(format);
  }
  return formats;
}

/** `0.5,0.2,0.3` (I->QA, IA->Q, IQ->A). */
export function parseRatios(text: string): TaskRatios {
  const parts = String(text).split(',').map((p) => Number(p.trim()));
  if (parts.length !== 3 || parts.some((p) => !Number.isFinite(p))) throw invalidArgument('three numbers I->QA,IA->Q,IQ->A (e.g. 0.5,0.2,0.3)', '--ratios', text);
  return { iToQa: parts[0] as number, iaToQ: parts[1] as number, iqToA: parts[2] as number };
}

/** yargs gives NaN for a non-number; say which option. */
export function optionalNumber(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || Number.isNaN(value)) throw invalidArgument('a number', name, value);
  return value;
}

export function optionalInteger(value: unknown, name: string): number | undefined {
  const number = optionalNumber(value, name);
  if (number !== undefined && !Number.isInteger(number)) throw invalidArgument('an integer', name, value);
  return number;
}

export function formatDuration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}

/**
 * `--openai-images`: `base64` (data URLs, what OpenAI, Together and Fireworks fine-tuning all take),
 * `url-prefix=https://...` (the image root served at that URL; OpenAI only), or `relative` / `absolute`
 * paths for a local trainer.
 */
export function parseOpenAiImages(value: string | undefined): OpenAiImages | undefined {
  if (value === undefined) return undefined;
  if (value === 'base64') return { imageUrl: 'data-url' };
  if (value === 'relative' || value === 'absolute') return { imageUrl: value };
  const prefix = /^url-prefix=(https?:\/\/\S+)$/.exec(value)?.[1];
  if (prefix) return { imageUrl: 'url-prefix', imageUrlPrefix: prefix };
  throw new SrfError('INVALID_ARGUMENT', `--openai-images must be base64, url-prefix=https://HOST/PATH, relative or absolute (received ${JSON.stringify(value)})`);
}

/** The selection options select and merge take alike. */
export interface SelectionArgs {
  'keep-top'?: number;
  'match-mix'?: string | false;
  format?: string[];
  'merge-with'?: string;
  'merge-image-folder'?: string;
  report: boolean;
  json: boolean;
}

export const SELECTION_OPTIONS = {
  'keep-top': { type: 'number', describe: 'fraction kept within each data type (default: as last selected; 0.2 for a new folder)' },
  'match-mix': { type: 'string', describe: 'resample the kept set to the type mix of this LLaVA JSON (or JSON object of weights per type)' },
  format: { type: 'string', array: true, describe: 'training-data formats besides LLaVA: sharegpt, openai' },
  'merge-with': { type: 'string', describe: 'original LLaVA data: also write train.merged.llava.json' },
  'merge-image-folder': { type: 'string', describe: 'folder the --merge-with images are relative to' },
  report: { type: 'boolean', default: true, describe: 'write report.html (--no-report to skip)' },
  json: { type: 'boolean', default: false, describe: 'print the result as JSON on stdout' },
} as const;

/** The selection settings the arguments give (those not given are left out); --no-match-mix is null. */
export function selectionFromArgs(argv: SelectionArgs): Omit<SelectionSettings, 'matchMix'> & { matchMix?: string | null } {
  const settings: Omit<SelectionSettings, 'matchMix'> & { matchMix?: string | null } = {};
  const keepTop = optionalNumber(argv['keep-top'], '--keep-top');
  if (keepTop !== undefined) settings.keepTop = keepTop;
  const matchMix = argv['match-mix'] as unknown;
  if (matchMix === false || matchMix === 'false') settings.matchMix = null;
  else if (typeof matchMix === 'string') settings.matchMix = matchMix;
  if (argv.format) settings.formats = parseFormats(argv.format);
  if (argv['merge-with'] !== undefined) settings.mergeWith = argv['merge-with'];
  if (argv['merge-image-folder'] !== undefined) settings.mergeImageFolder = argv['merge-image-folder'];
  return settings;
}
