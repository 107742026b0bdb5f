// Every command the README shows exists as written, and every relative link in it points at a file (and heading)
// that exists: the README is a front page a new user copies from.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { buildProgram } from '../../bin/tenancy';
import { headingAnchor } from '../../lib/policy/reference';
import { REPO_ROOT } from '../support/fixture-project';

/** What a shell block may run besides npm, npx tenancy and npx cdktf: tools the docs name, installed separately. */
const EXTERNAL_TOOLS = new Set(['terraform', 'psql', 'pip', 'aws', 'curl', 'kubectl', 'export', 'cd', 'sudo', 'apt-get', 'helm']);
/** npm's own commands the README uses (anything else goes through `npm run <script>`). */
const NPM_COMMANDS = new Set(['ci', 'install', 'start', 'test', 'link']);
/** cdktf CLI commands (cdktf 0.21). */
const CDKTF_COMMANDS = new Set(['synth', 'deploy', 'destroy', 'diff', 'output', 'list', 'get', 'init', 'watch', 'provider', 'debug']);

/** The lines of every ```sh / ```bash / ```shell block, continuation lines joined. */
export function shellCommandLines(markdown: string): string[] {
  const lines: string[] = [];
  let inShell = false;
  let inFence = false;
  let pending = '';
  for (const line of markdown.split('\n')) {
    const fence = /^\s*```(\w*)/.exec(line);
    if (fence) {
      inShell = !inFence && ['sh', 'bash', 'shell'].includes(fence[1]);
      inFence = !inFence;
      continue;
    }
    if (!inShell) continue;
    const text = stripComment(line);
    if (/\\\s*$/.test(text)) {
      pending += text.replace(/\\\s*$/, ' ');
      continue;
    }
    const full = (pending + text).trim();
    pending = '';
    if (full) lines.push(full);
  }
  return lines;
}

/** The line without its `# comment` (a `#` that starts a word outside quotes). */
function stripComment(line: string): string {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]))) {
      return line.slice(0, i);
    }
  }
  return line;
}

/** Words of a command line, quotes removed, split into simple commands at `&&`, `||`, `;` and `|`. */
export function simpleCommands(line: string): string[][] {
  const commands: string[][] = [[]];
  let word = '';
  let inWord = false;
  let quote: string | undefined;
  const endWord = (): void => {
    if (inWord) commands[commands.length - 1].push(word);
    word = '';
    inWord = false;
  };
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) quote = undefined;
      else word += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (/\s/.test(c)) {
      endWord();
    } else if (c === ';' || c === '|' || (c === '&' && line[i + 1] === '&')) {
      endWord();
      if (line[i + 1] === c) i++;
      commands.push([]);
    } else if ((c === '(' || c === ')') && !inWord) {
      endWord(); // a subshell's parentheses
    } else {
      word += c;
      inWord = true;
    }
  }
  endWord();
  return commands.filter((words) => words.length > 0);
}

/** The scripts of package.json and the CLI's command tree the checks compare against. */
export interface KnownCommands {
  readonly npmScripts: ReadonlySet<string>;
  readonly tenancy: Command;
}

/** Problems with the commands of a Markdown text's shell blocks: one line each, naming the command. */
export function commandProblems(markdown: string, known: KnownCommands): string[] {
  const problems: string[] = [];
  for (const line of shellCommandLines(markdown)) {
    for (const words of simpleCommands(line)) {
      const problem = commandProblem(words, known);
      if (problem) problems.push(`${problem}: ${line}`);
    }
  }
  return problems;
}

function commandProblem(allWords: readonly string[], known: KnownCommands): string | undefined {
  // Environment assignments before the command (`TENANCY_SELECT=acme npx cdktf synth`).
  const start = allWords.findIndex((w) => !/^[A-Za-z_][A-Za-z0-9_]*=/.test(w));
  if (start === -1) return undefined;
  const words = allWords.slice(start);
  const [program, ...args] = words;
  if (program === 'npm') {
    const [sub, name] = args;
    if (sub === 'run' || sub === 'run-script') {
      return name && known.npmScripts.has(name) ? undefined : `npm run ${name ?? ''}: no such script in package.json`;
    }
    return NPM_COMMANDS.has(sub) ? undefined : `npm ${sub}: not an npm command the README may use`;
  }
  if (program === 'npx') {
    const [tool, ...rest] = args;
    if (tool === 'tenancy') return tenancyProblem(rest, known.tenancy);
    if (tool === 'cdktf') return CDKTF_COMMANDS.has(rest[0]) ? undefined : `npx cdktf ${rest[0] ?? ''}: no such cdktf command`;
    return `npx ${tool}: not a tool of this project`;
  }
  if (program === 'tenancy') return 'bare `tenancy` is not on the PATH: write `npx tenancy`';
  return EXTERNAL_TOOLS.has(program) ? undefined : `${program}: unknown command`;
}

function tenancyProblem(args: readonly string[], program: Command): string | undefined {
  const [name, sub] = args;
  if (name === undefined || name === '--help' || name === '-h' || name === '--version' || name === '-V') return undefined;
  const command = program.commands.find((c) => c.name() === name);
  if (!command) return `npx tenancy ${name}: no such command`;
  if (command.commands.length === 0) return undefined;
  if (sub === undefined || sub.startsWith('-')) return undefined;
  return command.commands.some((c) => c.name() === sub) ? undefined : `npx tenancy ${name} ${sub}: no such subcommand`;
}

/** Relative links of a Markdown file (outside code) whose file, or heading, does not exist. */
export function brokenLinks(file: string, markdown = readFileSync(file, 'utf8')): string[] {
  const text = markdown
    .replace(/^\s*```[\s\S]*?^\s*```/gm, '')
    .replace(/`[^`\n]*`/g, '');
  const problems: string[] = [];
  for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue;
    const [path, anchor] = target.split('#');
    const resolved = path ? resolve(dirname(file), path) : file;
    if (!existsSync(resolved)) {
      problems.push(`${target}: no such file`);
      continue;
    }
    if (anchor && resolved.endsWith('.md') && !anchorsOf(resolved).has(anchor)) problems.push(`${target}: no such heading`);
  }
  return problems;
}

function anchorsOf(markdownFile: string): Set<string> {
  const text = readFileSync(markdownFile, 'utf8').replace(/^\s*```[\s\S]*?^\s*```/gm, '');
  return new Set([...text.matchAll(/^#{1,6} (.*)$/gm)].map(([, heading]) => headingAnchor(heading)));
}

const known: KnownCommands = {
  npmScripts: new Set(Object.keys((JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: object }).scripts)),
  tenancy: buildProgram(),
};

describe('README.md', () => {
  const readmePath = join(REPO_ROOT, 'README.md');
  const readme = readFileSync(readmePath, 'utf8');

  test('its shell blocks show commands', () => {
    const lines = shellCommandLines(readme);
    expect(lines).toContain('npm ci && npm start');
    expect(lines.filter((l) => l.startsWith('npx tenancy ')).length).toBeGreaterThan(0);
  });

  test('every command in its shell blocks exists as written', () => {
    expect(commandProblems(readme, known)).toEqual([]);
  });

  test('every relative link points at an existing file and heading', () => {
    expect(brokenLinks(readmePath)).toEqual([]);
  });
});

describe('the pages moved out of the README', () => {
  test.each(['architecture', 'billing', 'compliance', 'deploying', 'kubernetes', 'lifecycle', 'registry', 'reliability'])(
    'docs/%s.md: every relative link points at an existing file and heading',
    (page) => {
      expect(brokenLinks(join(REPO_ROOT, 'docs', `${page}.md`))).toEqual([]);
    },
  );
});

describe('the command checker', () => {
  test('names a missing npm script, tenancy command or subcommand, and a bare tenancy', () => {
    const markdown = [
      '```sh',
      'npm run no-such-script',
      'TENANCY_SELECT=acme npx tenancy onbaord --wait   # misspelt',
      'npx tenancy fleet plna',
      'tenancy status',
      'npx cdktf synth && npm run build',
      '```',
      '```yaml',
      'npm run ignored-not-shell: true',
      '```',
    ].join('\n');
    expect(commandProblems(markdown, known)).toEqual([
      'npm run no-such-script: no such script in package.json: npm run no-such-script',
      'npx tenancy onbaord: no such command: TENANCY_SELECT=acme npx tenancy onbaord --wait',
      'npx tenancy fleet plna: no such subcommand: npx tenancy fleet plna',
      'bare `tenancy` is not on the PATH: write `npx tenancy`: tenancy status',
    ]);
  });

  test('names a link to a missing file or heading', () => {
    const markdown = '[a](docs/no-such-page.md) [b](docs/registry.md#no-such-heading) [c](docs/registry.md#selecting-stacks) `[d](nope.md)`';
    expect(brokenLinks(join(REPO_ROOT, 'README.md'), markdown)).toEqual([
      'docs/no-such-page.md: no such file',
      'docs/registry.md#no-such-heading: no such heading',
    ]);
  });

  test('accepts continuation lines, quotes and the existing subcommands', () => {
    const markdown = [
      '```bash',
      'npx tenancy onboard --email ops@x.example --company "NewCo # Labs" \\',
      '    --plan pro --wait',
      "npx tenancy fleet plan --synth; npx tenancy audit rls | cat",
      '```',
    ].join('\n');
    expect(commandProblems(markdown, known)).toEqual(['cat: unknown command: npx tenancy fleet plan --synth; npx tenancy audit rls | cat']);
  });
});
