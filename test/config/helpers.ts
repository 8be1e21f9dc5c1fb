// Shared by the config tests: the message of the ConfigError a load throws (and that it is one).
import { expect } from 'vitest';
import { ConfigError } from '../../src/config/load.js';

export function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}
