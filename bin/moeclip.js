#!/usr/bin/env node
// Runs the TypeScript CLI through tsx so that no build step is needed after `npm install`.
import { register } from 'tsx/esm/api';
register();
process.env.MOECLIP_CLI_ENTRY = '1';
await import('../src/cli/main.ts');
