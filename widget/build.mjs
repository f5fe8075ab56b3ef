// Builds dist/widget.min.js from widget.js with terser (`make widget`; docs/operations.md).
//
//   node build.mjs [OUT]    (OUT defaults to dist/widget.min.js, beside this file)
//
// The output's first line is `/*! chatserver widget sha256:<hex> */`, the SHA-256 of the
// widget.js bytes it was built from: the server serves the build only while that matches
// the source (chatserver/web/app.py, minified_widget), else the source minified with
// rjsmin. The same widget.js and the same terser (package-lock.json) give the same bytes.
// The I18N marker string survives (terser writes it in double quotes; the server takes
// either quote).
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { minify } from 'terser';

const here = dirname(fileURLToPath(import.meta.url));
const out = resolve(process.argv[2] || join(here, 'dist', 'widget.min.js'));
const source = readFileSync(join(here, 'widget.js'));
const hash = createHash('sha256').update(source).digest('hex');

const result = await minify(source.toString('utf8'), {
  ecma: 2020,
  compress: { passes: 2 },
  mangle: true,
  format: { comments: false },
});
if (!result.code.includes('@@CHATSERVER_I18N@@')) {
  throw new Error('terser dropped the I18N marker string');
}
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `/*! chatserver widget sha256:${hash} */\n${result.code}\n`);
console.log(`${out}: ${result.code.length} bytes, sha256:${hash}`);
