import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { REFERENCE_FILE, REFERENCE_PATH_FROM_REPO, headingAnchor } from '../policy/reference';
import { esc } from './esc';

/**
 * The domain reference inside the report folder, so the rules' requirement links work wherever the
 * folder is archived or sent on its own: the Markdown as shipped, and an HTML page of it whose
 * headings carry the same anchors as GitHub's (the ones rules link to).
 */
export const REFERENCE_MD = `reference/${REFERENCE_FILE}`;
export const REFERENCE_HTML = `reference/${REFERENCE_FILE.replace(/\.md$/, '.html')}`;

/**
 * The reference to copy: the project's own `docs/reference` when it has one (a project may keep a
 * newer copy), else the one shipped with this package. undefined when neither exists.
 */
export function findReferenceSource(root: string): string | undefined {
  const candidates = [join(root, REFERENCE_PATH_FROM_REPO)];
  for (let dir = __dirname; dirname(dir) !== dir; dir = dirname(dir)) candidates.push(join(dir, REFERENCE_PATH_FROM_REPO));
  return candidates.find((p) => existsSync(p));
}

/**
 * The reference as a plain HTML page: headings with their anchors, code blocks, and the rest as
 * escaped paragraphs that keep their line breaks (the text is read, not typeset; no Markdown
 * library is a dependency of the package).
 */
export function renderReferenceHtml(markdown: string): string {
  const out: string[] = [];
  const seen = new Set<string>();
  let paragraph: string[] = [];
  let code: string[] | undefined;
  const flush = () => {
    if (paragraph.length) out.push(`<p>${esc(paragraph.join('\n'))}</p>`);
    paragraph = [];
  };
  for (const line of markdown.split(/\r?\n/)) {
    if (code) {
      if (/^\s*(```|~~~)/.test(line)) {
        out.push(`<pre>${esc(code.join('\n'))}</pre>`);
        code = undefined;
      } else code.push(line);
      continue;
    }
    if (/^\s*(```|~~~)/.test(line)) {
      flush();
      code = [];
      continue;
    }
    const heading = /^(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line);
    if (heading) {
      flush();
      const level = heading[1].length;
      const anchor = headingAnchor(heading[2]);
      // The first heading with a slug owns its anchor, as on GitHub.
      const id = seen.has(anchor) ? '' : ` id="${esc(anchor)}"`;
      seen.add(anchor);
      out.push(`<h${level}${id}>${esc(heading[2])}</h${level}>`);
    } else if (line.trim() === '') flush();
    else paragraph.push(line);
  }
  if (code) out.push(`<pre>${esc(code.join('\n'))}</pre>`);
  flush();
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Multi-tenant SaaS reference</title>
<style>
body { font: 14px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px auto; max-width: 900px; padding: 0 16px; color: #1b1f23; }
p { white-space: pre-wrap; } pre { background: #f6f8fa; padding: 8px; overflow-x: auto; }
:target { background: #fff8c5; }
a { color: #0969da; }
</style>
</head>
<body>
<p><a href="../index.html">Fleet summary</a> · <a href="${esc(REFERENCE_FILE)}">Markdown source</a></p>
${out.join('\n')}
</body>
</html>
`;
}
