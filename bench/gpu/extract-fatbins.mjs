#!/usr/bin/env node
/**
 * Copies a few whole fatbin modules out of node-llama-cpp's prebuilt libggml-cuda.so into a folder,
 * for bench/gpu/ptx-probe.py on the GPU machine: the library itself (181 MB) is too large to carry,
 * and what is to be settled there (does the driver accept its PTX, how long does JIT take, cold and
 * warm) is the same for any of its 143 modules. The largest modules are taken (the most JIT work),
 * up to a byte budget; a MANIFEST says which, and how much of the library's fatbin they are.
 *
 *   node bench/gpu/extract-fatbins.mjs LIBRARY OUT_DIR [BUDGET_MIB=8]
 */
import { closeSync, mkdirSync, openSync, readSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [library, outDir, budgetText = '8'] = process.argv.slice(2);
if (!library || !outDir) {
  console.error('usage: extract-fatbins.mjs LIBRARY OUT_DIR [BUDGET_MIB]');
  process.exit(2);
}
const fd = openSync(library, 'r');
const read = (offset, length) => {
  const b = Buffer.alloc(length);
  return b.subarray(0, readSync(fd, b, 0, length, offset));
};
// The .nv_fatbin section (ELF64 little-endian section headers).
const elf = read(0, 64);
const [shoff, shentsize, shnum, shstrndx] = [Number(elf.readBigUInt64LE(0x28)), elf.readUInt16LE(0x3a), elf.readUInt16LE(0x3c), elf.readUInt16LE(0x3e)];
const table = read(shoff, shentsize * shnum);
const section = (i) => ({ name: table.readUInt32LE(i * shentsize), offset: Number(table.readBigUInt64LE(i * shentsize + 0x18)), size: Number(table.readBigUInt64LE(i * shentsize + 0x20)) });
const names = section(shstrndx);
const strings = read(names.offset, names.size);
let fatbin;
for (let i = 0; i < shnum; i++) {
  const s = section(i);
  if (strings.toString('latin1', s.name, strings.indexOf(0, s.name)) === '.nv_fatbin') fatbin = s;
}
if (!fatbin) {
  console.error(`${library} has no .nv_fatbin section`);
  process.exit(1);
}
const modules = [];
for (let at = fatbin.offset; at + 16 <= fatbin.offset + fatbin.size; ) {
  const head = read(at, 16);
  if (head.readUInt32LE(0) !== 0xba55ed50) {
    at += 8;
    continue;
  }
  const size = head.readUInt16LE(6) + Number(head.readBigUInt64LE(8));
  modules.push({ offset: at, size });
  at += size;
}
const budget = Number(budgetText) * 2 ** 20;
const chosen = [];
let bytes = 0;
for (const m of [...modules].sort((a, b) => b.size - a.size)) {
  if (bytes + m.size > budget) continue;
  chosen.push(m);
  bytes += m.size;
}
mkdirSync(outDir, { recursive: true });
chosen.forEach((m, i) => writeFileSync(join(outDir, `module-${String(i).padStart(3, '0')}.fatbin`), read(m.offset, m.size)));
closeSync(fd);
const total = modules.reduce((sum, m) => sum + m.size, 0);
writeFileSync(
  join(outDir, 'MANIFEST'),
  `${chosen.length} of ${modules.length} fatbin modules of ${library}\n${bytes} of ${total} bytes (${((100 * bytes) / total).toFixed(1)} %)\n`,
);
console.log(`${chosen.length} of ${modules.length} modules, ${(bytes / 2 ** 20).toFixed(1)} MiB of ${(total / 2 ** 20).toFixed(1)} MiB, into ${outDir}`);
