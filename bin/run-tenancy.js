#!/usr/bin/env node
// package.json "bin" for `npx tenancy`: runs the compiled CLI (dist/bin/tenancy.js, from bin/tenancy.ts),
// or, before the first build, says how to make it instead of failing with a MODULE_NOT_FOUND stack.
// Plain JavaScript so it runs before any build; named apart from bin/tenancy.ts so imports of that still resolve to it.
'use strict';
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const compiled = join(__dirname, '..', 'dist', 'bin', 'tenancy.js');
if (!existsSync(compiled)) {
  process.stderr.write('tenancy: dist/ is missing: run `npm run build` first (`npm start` builds too), then run the command again\n');
  process.exitCode = 1;
} else {
  require(compiled).main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
