#!/usr/bin/env node
// eddy's CLI. Jobs are TypeScript modules, so the TypeScript loader is registered first.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
