/** `srf-native info`: what the engine was built with and the devices it sees. */
import type { Argv, CommandModule } from 'yargs';
import { buildInfo, type BuildInfo } from '../engine/native.js';
import { isGpu } from '../engine/devices.js';
import { toolVersion } from '../outputs/version.js';
import type { CliContext } from './context.js';
import { SrfError } from '../errors.js';
import { modelInfo } from './model-info.js';

interface InfoArgs {
  json: boolean;
  model?: string;
  mmproj?: string;
  'chat-template'?: string;
}

/** One line per device; GPUs numbered as `run --devices 0,1` counts them. */
function devicesList(devices: BuildInfo['devices'], gib: (bytes: number) => string): string[] {
  let gpu = 0;
  const lines = devices.map((d) => {
    const number = isGpu(d) ? `GPU ${gpu++}: ` : '';
    return `  ${number}${d.name} (${d.type}): ${d.description}${d.memoryTotal ? `, ${gib(d.memoryFree)} free of ${gib(d.memoryTotal)}` : ''}`;
  });
  lines.push(gpu > 1 ? `  run uses all ${gpu} GPUs, one engine replica each (--devices all; choose with --devices 0,1,...; --devices split: one engine over all)` : `  run uses one engine${gpu === 1 ? ' on the GPU' : ' on the CPU'} (--devices cpu,cpu: two CPU replicas)`);
  return lines;
}

/** "prebuilt v0.4.0 (@node-llama-cpp/linux-x64-cuda)" or "built from source (v0.4.0)". */
export function llamaCppLine(info: BuildInfo): string {
  if (info.llamaCppFrom !== 'prebuilt') return `built from source (${info.llamaCppVersion}${info.cudaArchitectures ? `, cuda ${info.cudaArchitectures}` : ''})`;
  const pkg = /(@node-llama-cpp\/[^/]+)/.exec(info.prebuiltDir)?.[1] ?? info.prebuiltDir;
  return `prebuilt ${info.llamaCppVersion} (${pkg})`;
}

/** "CPU (zen4)" where a prebuilt CPU variant was loaded, else the registered backends as they are. */
export function backendsLine(info: BuildInfo): string {
  if (info.backends.length === 0) return 'none';
  return info.backends.map((name) => (name === 'CPU' && info.cpuVariant ? `CPU (${info.cpuVariant})` : name)).join(', ');
}

/** The GPU part: the driver, each CUDA library (its kernels, whether it loaded and why), each GPU's verdict and its fix. */
export function cudaLines(info: BuildInfo): string[] {
  const { driver, libraries } = info.cuda;
  const cuda = driver.cudaVersion ? `, CUDA ${Math.floor(driver.cudaVersion / 1000)}.${Math.floor((driver.cudaVersion % 1000) / 10)}` : '';
  const lines = [`NVIDIA driver:  ${driver.present ? `yes${cuda}, ${driver.gpus.length} GPU${driver.gpus.length === 1 ? '' : 's'}` : `none (${driver.error})`}`];
  for (const library of libraries) {
    lines.push(`CUDA library:   ${library.role} (${library.path})`, `  kernels:      ${library.kernelsText}`, `  status:       ${library.status}`);
  }
  driver.gpus.forEach((gpu, i) => {
    lines.push(`GPU ${i}:          ${gpu.name} (compute ${gpu.major}.${gpu.minor})`);
    for (const library of libraries) {
      const v = library.verdicts[i];
      if (!v) continue;
      const verdict = v.verdict === 'native' ? 'native kernels' : v.verdict === 'jit' ? 'JIT from PTX (first start slow)' : 'cannot run';
      lines.push(`  ${`${library.role}:`.padEnd(13)} ${verdict}: ${v.reason}`);
      if (v.fix && library.status === 'loaded') lines.push(`  fix:          ${v.fix}`);
    }
    if (!libraries.some((l) => l.status === 'loaded')) {
      const fix = libraries.map((l) => l.verdicts[i]?.fix).find(Boolean);
      if (fix) lines.push(`  fix:          ${fix}`);
    }
  });
  return lines;
}

export function infoCommand(ctx: CliContext): CommandModule<object, InfoArgs> {
  return {
    command: 'info',
    describe: 'print the engine build: backend (CUDA/CPU), devices, llama.cpp version',
    builder: (y: Argv) =>
      y.options({
        json: { type: 'boolean', default: false, describe: 'as JSON on stdout' },
        model: { type: 'string', describe: 'with --mmproj: also load this pair and name its family, projector, prompt format, image tokens and end tokens' },
        mmproj: { type: 'string', describe: 'the pair\'s mmproj GGUF (with --model)' },
        'chat-template': { type: 'string', describe: 'as run --chat-template' },
      }) as unknown as Argv<InfoArgs>,
    handler: async (argv) => {
      const info = buildInfo();
      if ((argv.model === undefined) !== (argv.mmproj === undefined)) throw new SrfError('INVALID_ARGUMENT', 'info: --model and --mmproj go together');
      const pair = argv.model !== undefined && argv.mmproj !== undefined ? await modelInfo({ model: argv.model, mmproj: argv.mmproj, chatTemplate: argv['chat-template'] }) : undefined;
      if (argv.json) {
        ctx.event({ version: toolVersion(), ...info, ...(pair ? { model: pair.json } : {}) });
        return;
      }
      const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(1)} GiB`;
      const lines = [
        `srf-native ${toolVersion()}`,
        `backend:        ${info.backend} (chosen: ${info.gpuChoice})${info.llamaCppFrom === 'source' && info.cudaArchitectures ? `, built for CUDA architectures ${info.cudaArchitectures}` : ''}`,
        `llama.cpp:      ${llamaCppLine(info)}`,
        `backends:       ${backendsLine(info)}`,
        ...cudaLines(info),
        ...(info.backendWarning ? [`warning:        ${info.backendWarning}`] : []),
        `GPU offload:    ${info.supportsGpuOffload ? 'yes' : 'no'}`,
        'devices:',
        ...devicesList(info.devices, gib),
        `system:         ${info.systemInfo}`,
        ...(pair?.lines ?? []),
      ];
      ctx.print(lines.join('\n'));
    },
  };
}
