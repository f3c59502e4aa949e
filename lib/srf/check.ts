/** Up-front checks of option values, sharp-style: every bad value becomes one INVALID_ARGUMENT SrfError. */
import { invalidArgument } from '../errors.js';

export function checkFraction(value: unknown, name: string, { allowZero = true } = {}): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 1 || (!allowZero && value === 0)) {
    throw invalidArgument(allowZero ? 'a number between 0 and 1' : 'a number in (0, 1]', name, value);
  }
  return value;
}

export function checkPositiveInteger(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw invalidArgument('a positive integer', name, value);
  }
  return value;
}

/** Seeds are unsigned 32-bit integers, the state size of the generator in random.ts. */
export function checkSeed(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw invalidArgument('an integer between 0 and 4294967295', name, value);
  }
  return value;
}

export function checkString(value: unknown, name: string): string {
  if (typeof value !== 'string') throw invalidArgument('a string', name, value);
  return value;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
