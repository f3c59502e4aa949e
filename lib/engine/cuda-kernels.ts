/**
 * What a CUDA library can run, read from the file itself, and whether it runs on a given GPU.
 *
 * nvcc puts a library's kernels in its ELF section `.nv_fatbin`: fatbin modules (magic 0xBA55ED50),
 * each a list of entries whose header says its kind (1 PTX, 2 cubin), its architecture (86 for
 * sm_86) and, for PTX, its PTX ISA version (9.1 from CUDA 13.1's tools). Only those headers are
 * read (positioned reads; the section is ~130 MB in node-llama-cpp's CUDA library).
 *
 * NVIDIA's rules applied: a cubin for sm_XY runs on GPUs of compute capability X.Z with Z >= Y; PTX
 * for compute_XY is compiled by the driver (JIT, at first use, cached) for any GPU of capability >= X.Y,
 * and only by a driver whose CUDA version is at least the toolkit's that wrote the PTX.
 */
import { closeSync, openSync, readSync } from 'node:fs';

export interface CudaKernels {
  /** sm_XY of the cubins (native code), as 86 for sm_86, ascending. */
  cubins: number[];
  /** compute_XY of the PTX, ascending. */
  ptx: number[];
  /** The PTX ISA version ('9.1'); '' without PTX. */
  ptxIsa: string;
  /** The CUDA runtime it links (13 for libcudart.so.13); 0 when not found (a static runtime). */
  cudaRuntime: number;
}

const FATBIN_MAGIC = 0xba55ed50;
const KIND_PTX = 1;
const KIND_CUBIN = 2;

interface Section {
  offset: number;
  size: number;
}

function readAt(fd: number, offset: number, length: number): Buffer {
  const buffer = Buffer.alloc(length);
  const read = readSync(fd, buffer, 0, length, offset);
  return buffer.subarray(0, read);
}

/** ELF64 little-endian section headers by name (only what this module needs). */
function elfSections(fd: number): Map<string, Section> {
  const header = readAt(fd, 0, 64);
  if (header.length < 64 || header.readUInt32BE(0) !== 0x7f454c46 || header[4] !== 2 || header[5] !== 1) return new Map();
  const shoff = Number(header.readBigUInt64LE(0x28));
  const shentsize = header.readUInt16LE(0x3a);
  const shnum = header.readUInt16LE(0x3c);
  const shstrndx = header.readUInt16LE(0x3e);
  const table = readAt(fd, shoff, shentsize * shnum);
  const entry = (i: number) => ({
    name: table.readUInt32LE(i * shentsize),
    offset: Number(table.readBigUInt64LE(i * shentsize + 0x18)),
    size: Number(table.readBigUInt64LE(i * shentsize + 0x20)),
  });
  if (table.length < shentsize * shnum || shstrndx >= shnum) return new Map();
  const names = entry(shstrndx);
  const strings = readAt(fd, names.offset, names.size);
  const sections = new Map<string, Section>();
  for (let i = 0; i < shnum; i++) {
    const s = entry(i);
    const end = strings.indexOf(0, s.name);
    sections.set(strings.toString('latin1', s.name, end < 0 ? undefined : end), { offset: s.offset, size: s.size });
  }
  return sections;
}

/** The kernels of the CUDA code in an ELF file (a libggml-cuda.so, or an addon with CUDA compiled in); null when it has none. */
export function readCudaKernels(file: string): CudaKernels | null {
  const fd = openSync(file, 'r');
  try {
    const sections = elfSections(fd);
    const fatbin = sections.get('.nv_fatbin');
    if (!fatbin) return null;
    const cubins = new Set<number>();
    const ptx = new Set<number>();
    let ptxIsa = '';
    const end = fatbin.offset + fatbin.size;
    let at = fatbin.offset;
    while (at + 16 <= end) {
      const head = readAt(fd, at, 16);
      if (head.length < 16) break;
      if (head.readUInt32LE(0) !== FATBIN_MAGIC) {
        at += 8; // modules are 8-byte aligned
        continue;
      }
      const headerSize = head.readUInt16LE(6);
      const moduleEnd = Math.min(end, at + headerSize + Number(head.readBigUInt64LE(8)));
      let entryAt = at + headerSize;
      while (entryAt + 64 <= moduleEnd) {
        const e = readAt(fd, entryAt, 64);
        if (e.length < 64) break;
        const kind = e.readUInt16LE(0);
        const arch = e.readUInt32LE(28);
        if (kind === KIND_CUBIN) cubins.add(arch);
        if (kind === KIND_PTX) {
          ptx.add(arch);
          ptxIsa = `${e.readUInt16LE(26)}.${e.readUInt16LE(24)}`;
        }
        entryAt += e.readUInt32LE(4) + Number(e.readBigUInt64LE(8));
      }
      at = Math.max(moduleEnd, at + 8);
    }
    const dynstr = sections.get('.dynstr');
    const runtime = dynstr ? /libcudart\.so\.(\d+)/.exec(readAt(fd, dynstr.offset, dynstr.size).toString('latin1')) : null;
    const ascending = (set: Set<number>) => [...set].sort((a, b) => a - b);
    return { cubins: ascending(cubins), ptx: ascending(ptx), ptxIsa, cudaRuntime: runtime ? Number(runtime[1]) : 0 };
  } finally {
    closeSync(fd);
  }
}

/**
 * The CUDA toolkit (and so the oldest driver) a PTX ISA version needs, as 1000 * major + 10 * minor
 * (NVIDIA's PTX ISA release notes): 9.x came with CUDA 13.x, 8.0-8.4 with 12.0-12.4, 8.5 with 12.5,
 * 8.6 with 12.7, 8.7 with 12.8, 8.8 with 12.9, 7.x with 11.x.
 */
export function ptxIsaCudaVersion(isa: string): number {
  const match = /^(\d+)\.(\d+)$/.exec(isa);
  if (!match) return 0;
  const [major, minor] = [Number(match[1]), Number(match[2])];
  if (major >= 9) return (major + 4) * 1000 + minor * 10;
  if (major === 8) return 12000 + ([0, 1, 2, 3, 4, 5, 7, 8, 9][minor] ?? minor + 1) * 10;
  if (major === 7) return 11000 + minor * 10;
  const older: Record<string, number> = { '6.0': 9000, '6.1': 9010, '6.2': 9020, '6.3': 10000, '6.4': 10010, '6.5': 10020 };
  return older[isa] ?? 0;
}

/** 13010 -> '13.1'. */
export function cudaVersionText(version: number): string {
  return `${Math.floor(version / 1000)}.${Math.floor((version % 1000) / 10)}`;
}

export type KernelVerdict = 'native' | 'jit' | 'cannot-run';

export interface KernelJudgement {
  verdict: KernelVerdict;
  /** One sentence: why. */
  reason: string;
  /** For 'jit' the PTX arch compiled (90 for compute_90); for 'native' the cubin's. */
  arch?: number;
  /** For a driver too old: the CUDA version (1000 * major + 10 * minor) the driver must support. */
  needsDriverCuda?: number;
}

/** A GPU's compute capability as an arch number: 9.0 -> 90, 12.1 -> 121. */
export const archOf = (major: number, minor: number): number => major * 10 + minor;

const list = (prefix: string, archs: number[]) => archs.map((a) => `${prefix}${a}`).join(', ') || 'none';

/** Describes a library's kernels in one line: "native sm_86, sm_89; PTX compute_75, compute_90 (ISA 9.1, CUDA 13.1)". */
export function describeKernels(k: CudaKernels): string {
  const ptx = k.ptx.length > 0 ? `; PTX ${list('compute_', k.ptx)} (ISA ${k.ptxIsa}, from CUDA ${cudaVersionText(ptxIsaCudaVersion(k.ptxIsa))} tools)` : '; no PTX';
  return `native ${list('sm_', k.cubins)}${ptx}`;
}

/**
 * Whether `kernels` run on a GPU of compute capability major.minor under a driver for CUDA
 * `driverCuda` (0: not known, not held against it).
 */
export function judgeKernels(kernels: CudaKernels, major: number, minor: number, driverCuda: number): KernelJudgement {
  const gpu = archOf(major, minor);
  const sm = `sm_${gpu}`;
  if (kernels.cudaRuntime > 0 && driverCuda > 0 && driverCuda < kernels.cudaRuntime * 1000) {
    return {
      verdict: 'cannot-run',
      reason: `its CUDA ${kernels.cudaRuntime} runtime needs a driver for CUDA ${kernels.cudaRuntime}.0 or newer; this driver supports CUDA ${cudaVersionText(driverCuda)}`,
      needsDriverCuda: kernels.cudaRuntime * 1000,
    };
  }
  const cubin = [...kernels.cubins].reverse().find((a) => Math.floor(a / 10) === major && a % 10 <= minor);
  if (cubin !== undefined) return { verdict: 'native', reason: `native kernels for ${sm} (cubin sm_${cubin})`, arch: cubin };
  const ptx = [...kernels.ptx].reverse().find((a) => a <= gpu);
  if (ptx === undefined) {
    return { verdict: 'cannot-run', reason: `no code for ${sm}: ${describeKernels(kernels)}, all for newer GPUs` };
  }
  const needs = ptxIsaCudaVersion(kernels.ptxIsa);
  if (driverCuda > 0 && needs > 0 && driverCuda < needs) {
    return {
      verdict: 'cannot-run',
      reason: `no native kernels for ${sm}, and its compute_${ptx} PTX (ISA ${kernels.ptxIsa}) needs a driver for CUDA ${cudaVersionText(needs)} or newer; this driver supports CUDA ${cudaVersionText(driverCuda)}`,
      needsDriverCuda: needs,
    };
  }
  return { verdict: 'jit', reason: `no native kernels for ${sm}: the driver compiles its compute_${ptx} PTX at first use (minutes, once, then cached)`, arch: ptx };
}
