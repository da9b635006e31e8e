#!/usr/bin/env node
// The committed bundle; `npm run build` regenerates it from src/cli.
await import('../dist/cli/index.js');
