/**
 * `srf-native build`: builds the engine in the installed package's own folder (what the install
 * script does), for users whose install scripts did not run, or who want another backend. Runs
 * scripts/build-native.mjs in a child process (the same script `npm install` runs), then loads the
 * new engine and reports what it was built with.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { SrfError } from '../errors.js';
import { buildInfo, packageRoot } from '../engine/native.js';
import type { CliContext } from './context.js';

interface BuildArgs {
  gpu?: 'auto' | 'cuda' | 'cpu';
  jobs?: number;
  'from-source': boolean;
  'cuda-arch'?: string;
}

/** Runs the build script; its output goes to the CLI's stderr. Resolves with its exit code. */
function runBuildScript(ctx: CliContext, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(packageRoot(), 'scripts', 'build-native.mjs'), ...args], {
      cwd: packageRoot(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.on('data', (chunk: Buffer) => ctx.stderr.write(chunk));
    child.stderr.on('data', (chunk: Buffer) => ctx.stderr.write(chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve(signal ? 128 : (code ?? 1)));
  });
}

export function buildCommand(ctx: CliContext): CommandModule<object, BuildArgs> {
  return {
    command: 'build',
    describe: 'build the engine (llama.cpp + addon) in the installed package: what `npm install` does',
    builder: (y: Argv) =>
      y.options({
        gpu: {
          choices: ['auto', 'cuda', 'cpu'] as const,
          describe: 'backend: prebuilt, the CUDA package where there is one (auto, cuda: it runs CUDA where its library loads) or the CPU one (cpu); from source, CUDA when nvcc and cuBLAS are found (auto), CUDA or an error (cuda), CPU only (cpu); default $SRF_GPU or auto',
        },
        jobs: { type: 'number', describe: 'compile jobs (default $SRF_BUILD_JOBS or every core)' },
        'cuda-arch': {
          type: 'string',
          describe: 'with --from-source: CUDA architectures to compile native kernels for, comma-separated (80 A100, 90 H100/H200, 100 B200; default $CMAKE_CUDA_ARCHITECTURES, else the GPUs this machine has)',
        },
        'from-source': {
          type: 'boolean',
          default: false,
          describe: "compile all of llama.cpp from node-llama-cpp's bundle instead of linking its prebuilt libraries (your own CUDA architectures, a sanitizer, a platform without a prebuilt package; also SRF_BUILD_FROM_SOURCE=1)",
        },
      }) as unknown as Argv<BuildArgs>,
    handler: async (argv) => {
      const args: string[] = [];
      if (argv.gpu) args.push('--gpu', argv.gpu);
      if (argv['from-source']) args.push('--from-source');
      if (argv['cuda-arch'] !== undefined) args.push('--cuda-arch', argv['cuda-arch']);
      if (argv.jobs !== undefined) {
        if (!Number.isInteger(argv.jobs) || argv.jobs < 1) {
          throw new SrfError('INVALID_ARGUMENT', `--jobs must be a whole number >= 1, not ${argv.jobs}`);
        }
        args.push('--jobs', String(argv.jobs));
      }
      const code = await runBuildScript(ctx, args);
      if (code !== 0) {
        throw new SrfError('BUILD_FAILED', `the engine build failed (exit ${code}); the lines above say why`);
      }
      const info = buildInfo();
      ctx.print(
        `srf-native: engine built: backend ${info.backend}` +
          `${info.cudaArchitectures ? `, CUDA architectures ${info.cudaArchitectures}` : ''}, llama.cpp ${info.llamaCppVersion} (${info.llamaCppFrom}); ` +
          `devices: ${info.devices.map((d) => d.description || d.name).join(', ') || 'none'}`,
      );
    },
  };
}
