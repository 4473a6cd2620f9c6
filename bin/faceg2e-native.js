#!/usr/bin/env node
'use strict';
// The CLI entry: dist/ is built from lib/ by `npm run build:ts` (run by `prepare` on install from git).
let cli;
try {
  cli = require('../dist/cli/main.js');
} catch (e) {
  if (e && e.code === 'MODULE_NOT_FOUND' && String(e.message).includes('dist/cli/main')) {
    process.stderr.write('faceg2e-native: the compiled JavaScript (dist/) is missing; run `npm run build:ts` in the package folder.\n');
    process.exit(1);
  }
  throw e;
}
cli.main(process.argv).then(
  (code) => process.exit(code),
  (e) => process.exit(cli.reportError(e)),
);
