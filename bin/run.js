#!/usr/bin/env node
// pushctl entry point. Commands are TypeScript files run directly by Node's
// native type stripping (Node ≥ 24): no build step, no ts-node, no tsx.
import { execute } from '@oclif/core';

await execute({ dir: import.meta.url });
