// Errors for humans: printed as written (oclif's error box wraps long lines,
// which mangles log tails), then the command exits with `code`.
import type { Command } from '@oclif/core';

export function fail(cmd: Command, message: string, code = 1): never {
  process.stderr.write(`pushctl: ${message}\n`);
  return cmd.exit(code);
}
