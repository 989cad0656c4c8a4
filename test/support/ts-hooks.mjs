// Module hooks for child processes that run the workspace's TypeScript sources (Node 20 runs no
// TypeScript itself): vitest's view of the repository, for a process the test starts. Registered by
// test/support/sources.ts (`node ...sourcesArgs() file.ts`).
// - `@ferry/<name>` resolves to packages/<name>/src/index.ts or apps/<name>/src/index.ts, as the
//   aliases in vitest.config.ts do;
// - a `./x.js` import from a .ts file resolves to ./x.ts where only that exists;
// - a .ts file is compiled on load, one file at a time (typescript's transpileModule: types are
//   erased, nothing is type-checked: `tsc -b` does that).
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = new URL('../../', import.meta.url);

/** @param {string} name */
function workspaceSource(name) {
  for (const dir of ['packages', 'apps']) {
    const url = new URL(`${dir}/${name}/src/index.ts`, ROOT);
    if (existsSync(url)) return url.href;
  }
  return undefined;
}

/** @type {import('node:module').ResolveHook} */
export async function resolve(specifier, context, nextResolve) {
  const ws = /^@ferry\/([a-z-]+)$/.exec(specifier);
  const src = ws ? workspaceSource(ws[1]) : undefined;
  if (src) return { url: src, shortCircuit: true };
  if (/^\.{1,2}\//.test(specifier) && specifier.endsWith('.js') && context.parentURL?.endsWith('.ts')) {
    const js = new URL(specifier, context.parentURL);
    const tsUrl = new URL(specifier.replace(/\.js$/, '.ts'), context.parentURL);
    if (!existsSync(js) && existsSync(tsUrl)) return { url: tsUrl.href, shortCircuit: true };
  }
  return nextResolve(specifier, context);
}

/** @type {import('node:module').LoadHook} */
export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return nextLoad(url, context);
  const fileName = fileURLToPath(url);
  const { outputText } = ts.transpileModule(await readFile(fileName, 'utf8'), {
    fileName,
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, inlineSourceMap: true, inlineSources: true },
  });
  return { format: 'module', source: outputText, shortCircuit: true };
}
