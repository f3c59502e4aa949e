/**
 * The one place option values are checked, sharp-style: every bad value becomes an INVALID_ARGUMENT
 * SrfError saying "Expected X for NAME but received Z" (errors.ts invalidArgument), before any work
 * starts and before C++ sees it. The `...Option` forms take a fallback for undefined.
 */
import { invalidArgument } from '../errors.js';

/** An integer in [min, max]. */
export function checkInteger(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalidArgument(`an integer from ${min} to ${max}`, name, value);
  }
  return value;
}

/** An integer in [min, max]; `fallback` when undefined. */
export function integerOption(value: unknown, name: string, min: number, max: number, fallback: number): number {
  return value === undefined ? fallback : checkInteger(value, name, min, max);
}

/** A finite number in [min, max]; `fallback` when undefined. */
export function numberOption(value: unknown, name: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw invalidArgument(`a number from ${min} to ${max}`, name, value);
  }
  return value;
}

export function booleanOption(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw invalidArgument('true or false', name, value);
  return value;
}

export function stringOption(value: unknown, name: string, fallback: string): string {
  return value === undefined ? fallback : checkString(value, name);
}

export function checkString(value: unknown, name: string): string {
  if (typeof value !== 'string') throw invalidArgument('a string', name, value);
  return value;
}

export function checkPositiveInteger(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) throw invalidArgument('a positive integer', name, value);
  return value;
}

export function checkNonNegativeInteger(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) throw invalidArgument('a non-negative integer', name, value);
  return value;
}

export function checkFraction(value: unknown, name: string, { allowZero = true } = {}): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 1 || (!allowZero && value === 0)) {
    throw invalidArgument(allowZero ? 'a number between 0 and 1' : 'a number in (0, 1]', name, value);
  }
  return value;
}

/** Seeds are unsigned 32-bit integers (the state of srf/random.ts's generator, and llama.cpp's seed). */
export function checkSeed(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw invalidArgument('an integer between 0 and 4294967295', name, value);
  }
  return value;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
