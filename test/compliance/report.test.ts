/// <reference lib="dom" />
// `tenancy compliance report` without live connections: the per-tenant Markdown and JSON, the fleet
// summary, failures and suppressions in both, and index.html rendered in headless Chromium, whose
// table (read from the DOM) matches fleet.json.
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'puppeteer-core';
import { main } from '../../bin/tenancy';
import { runComplianceReport } from '../../lib/cli/compliance-command';
import type { FleetReport, StackReport } from '../../lib/compliance/report';
import { writeComplianceReport } from '../../lib/compliance/write-report';
import { ALL_RULES, rulesOf } from '../../lib/policy/packs';
import { PACK_NAMES } from '../../lib/policy/policy-rule';
import { headingAnchor } from '../../lib/policy/reference';
import { launchChromium } from '../support/chromium';
import { FixtureProject } from '../support/fixture-project';

const REASON = 'partner VPN range agreed with the customer, ticket SEC-1234';
// Markup in a company name is data: the pages show it as text.
const COMPANY = 'Initech <img src=x onerror="window.pwned=1"> & "Sons"';
const readJson = <T>(file: string): T => JSON.parse(readFileSync(file, 'utf8')) as T;

let project: FixtureProject;
let out: string;
beforeAll(() => {
  // The sample registry, with one failing tenant (a public /8 egress) and one suppressed finding.
  project = FixtureProject.fromSample();
  const globex = project.readTenant('globex');
  project.writeTenant({ ...globex, workload: { ...(globex.workload as object), egress: [{ cidr: '11.0.0.0/8', ports: [443] }] } });
  const initech = project.readTenant('initech');
  project.writeTenant({
    ...initech,
    workload: { ...(initech.workload as object), egress: [{ cidr: '100.64.0.0/10', ports: [443] }] },
    company: COMPANY,
    compliance: { soc2: true, suppressions: [{ rule: 'TENANCY-K8S-3', path: 'namespace/release', reason: REASON }] },
  });
  out = join(project.root, 'evidence');
});
afterAll(() => project.remove());

describe('the report of a fleet', () => {
  let code: number;
  let stdout = '';
  let stderr = '';
  beforeAll(async () => {
    code = await runComplianceReport(
      { root: project.root, out },
      { stdout: { write: (t: string) => (stdout += t) }, stderr: { write: (t: string) => (stderr += t) } },
    );
  });

  test('exits 1 because a tenant fails, and says where the report is', () => {
    expect(stderr).toBe('');
    expect(code).toBe(1);
    expect(stdout).toMatch(/^FAIL\s+tenant-globex\s/m);
    expect(stdout).toMatch(/^PASS\s+tenant-initech\s.*1 suppressed/m);
    expect(stdout).toMatch(/9 stacks, 1 failing; report in .*evidence\//);
  });

  test('writes a Markdown and a JSON report per stack, fleet.json and index.html, and no cdktf.out', () => {
    expect(readdirSync(out).sort()).toEqual(['fleet.json', 'index.html', 'platform', 'reference', 'tenants']);
    expect(readdirSync(join(out, 'tenants')).sort()).toEqual(['acme', 'berlin-analytics', 'globex', 'initech', 'mediwell', 'payflow', 'tinyco'].flatMap((s) => [`${s}.html`, `${s}.json`, `${s}.md`]));
    expect(readdirSync(join(out, 'platform')).sort()).toEqual(['eu-central-1.html', 'eu-central-1.json', 'eu-central-1.md', 'us-east-1.html', 'us-east-1.json', 'us-east-1.md']);
    expect(readdirSync(join(out, 'reference')).sort()).toEqual(['multi-tenant-saas-reference.html', 'multi-tenant-saas-reference.md']);
    expect(existsSync(join(project.root, 'cdktf.out'))).toBe(false);
  });

  test('each tenant: the packs its flags choose and every rule of them with its outcome and reference', () => {
    for (const [slug, packs] of [['mediwell', ['tenancy', 'soc2', 'hipaa']], ['payflow', ['tenancy', 'soc2', 'pci']], ['berlin-analytics', ['tenancy', 'soc2', 'gdpr']], ['acme', ['tenancy', 'soc2']]] as const) {
      const r = readJson<StackReport>(join(out, 'tenants', `${slug}.json`));
      expect(r).toMatchObject({ report: 'tenancy compliance report', formatVersion: 1, stack: `tenant-${slug}`, kind: 'tenant', packs, status: 'pass', evidence: { collected: false } });
      expect(r.rules.map((x) => x.id)).toEqual(rulesOf([...packs]).map((x) => x.id));
      for (const rule of r.rules) {
        expect(['pass', 'not-applicable']).toContain(rule.status);
        expect(rule.reference.href).toBe(`multi-tenant-saas-reference.md#${rule.reference.anchor}`);
      }
      const md = readFileSync(join(out, 'tenants', `${slug}.md`), 'utf8');
      for (const rule of r.rules) expect(md).toContain(`| \`${rule.id}\` |`);
      expect(md).toContain('**PASS**');
    }
  });

  test('a failing rule: status fail, the finding with its construct path, in JSON and Markdown', () => {
    const r = readJson<StackReport>(join(out, 'tenants', 'globex.json'));
    expect(r.status).toBe('fail');
    expect(r.rules.find((x) => x.id === 'TENANCY-K8S-3')).toMatchObject({
      status: 'fail',
      findings: [{ path: 'tenant-globex/namespace/release', message: expect.stringContaining('egress to 11.0.0.0/8 opens /8') }],
    });
    const md = readFileSync(join(out, 'tenants', 'globex.md'), 'utf8');
    expect(md).toContain('**FAIL**');
    expect(md).toMatch(/- \*\*error\*\* `TENANCY-K8S-3` at `tenant-globex\/namespace\/release`: egress to 11\.0\.0\.0\/8 opens \/8/);
  });

  test('a suppressed finding: with its reason and where it was declared, in JSON and Markdown', () => {
    const r = readJson<StackReport>(join(out, 'tenants', 'initech.json'));
    expect(r.status).toBe('pass');
    expect(r.suppressions).toEqual([{ rule: 'TENANCY-K8S-3', path: 'tenant-initech/namespace/release', reason: REASON, source: 'registry', finding: expect.stringContaining('100.64.0.0/10') }]);
    expect(r.rules.find((x) => x.id === 'TENANCY-K8S-3')!.status).toBe('suppressed');
    const md = readFileSync(join(out, 'tenants', 'initech.md'), 'utf8');
    expect(md).toContain(`| \`TENANCY-K8S-3\` | \`tenant-initech/namespace/release\` | ${REASON} | registry |`);
  });

  test('fleet.json: one row per stack with counts per pack, and the offboarded tenant named', () => {
    const fleet = readJson<FleetReport>(join(out, 'fleet.json'));
    expect(fleet.rows.map((r) => r.stack)).toEqual([
      'tenant-acme', 'tenant-berlin-analytics', 'tenant-globex', 'tenant-initech', 'tenant-mediwell', 'tenant-payflow', 'tenant-tinyco', 'platform-eu-central-1', 'platform-us-east-1',
    ]);
    expect(fleet.totals).toMatchObject({ stacks: 9, failing: 1, fail: 1, suppressed: 1 });
    expect(fleet.withoutStack).toEqual(['oldco']);
    expect(fleet.packs.map((p) => p.name)).toEqual([...PACK_NAMES]);
    expect(fleet.packs.flatMap((p) => p.rules)).toEqual(ALL_RULES.map((r) => r.id));
    const globex = fleet.rows.find((r) => r.slug === 'globex')!;
    expect(globex).toMatchObject({ status: 'fail', byPack: { tenancy: { fail: 1 } }, files: { html: 'tenants/globex.html', markdown: 'tenants/globex.md', json: 'tenants/globex.json' } });
  });
});

describe('the fleet summary page in headless Chromium', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });

  test('is self-contained, and its table (read from the DOM) matches fleet.json', async () => {
    const fleet = readJson<FleetReport>(join(out, 'fleet.json'));
    const page = await browser.newPage();
    const requests: string[] = [];
    const problems: string[] = [];
    await page.setRequestInterception(true);
    page.on('request', (req) => {
      requests.push(req.url());
      if (req.url().startsWith('file://')) void req.continue();
      else void req.abort();
    });
    page.on('console', (m) => (m.type() === 'error' ? problems.push(m.text()) : undefined));
    page.on('pageerror', (e) => problems.push(String(e)));
    await page.goto(`file://${join(out, 'index.html')}`, { waitUntil: 'load' });

    // Nothing but the page itself was requested: no CDN, no font, no script.
    expect(requests).toEqual([`file://${join(out, 'index.html')}`]);
    expect(problems).toEqual([]);
    expect(await page.title()).toBe('Compliance fleet summary');

    const table = await page.$$eval('#fleet-summary tbody tr', (rows) =>
      rows.map((tr) => {
        const field = (name: string) => tr.querySelector(`td[data-field="${name}"]`)?.textContent?.trim() ?? null;
        const packs: Record<string, unknown> = {};
        tr.querySelectorAll('td[data-pack]').forEach((td: Element) => {
          const data = (name: string) => td.getAttribute(`data-${name}`);
          packs[data('pack')!] = data('applied') === 'true'
            ? { pass: Number(data('pass')), fail: Number(data('fail')), warning: Number(data('warning')), suppressed: Number(data('suppressed')), notApplicable: Number(data('not-applicable')), text: td.textContent!.trim() }
            : null;
        });
        return {
          stack: field('stack'), link: tr.querySelector('td[data-field="stack"] a')?.getAttribute('href'), company: field('company'), model: field('model'), plan: field('plan'),
          region: field('region'), packs: field('packs'), byPack: packs, fail: Number(field('fail')), suppressed: Number(field('suppressed')), evidence: field('evidence'), status: field('status'),
        };
      }));

    expect(table).toEqual(fleet.rows.map((r) => ({
      stack: r.stack,
      link: r.files.html,
      company: r.company ?? 'shared platform',
      model: r.model ?? '',
      plan: r.plan ?? '',
      region: r.region,
      packs: r.packs.join(', '),
      byPack: Object.fromEntries(PACK_NAMES.map((p) => [p, r.packs.includes(p) ? { ...r.byPack[p], text: expect.stringMatching(new RegExp(`^${r.byPack[p]!.pass} pass`)) } : null])),
      fail: r.totals.fail,
      suppressed: r.totals.suppressed,
      evidence: r.evidence,
      status: r.status,
    })));

    // The chart: one bar per applied pack of each stack, with the same counts; failing stacks stand out.
    const bars = await page.$$eval('#pack-chart g.bar', (gs) => gs.map((g) => Object.fromEntries(['stack', 'pack', 'pass', 'fail', 'warning', 'suppressed'].map((k) => [k, g.getAttribute(`data-${k}`)]))));
    expect(bars).toEqual(fleet.rows.flatMap((r) => r.packs.map((p) => ({
      stack: r.stack, pack: p, pass: String(r.byPack[p]!.pass), fail: String(r.byPack[p]!.fail), warning: String(r.byPack[p]!.warning), suppressed: String(r.byPack[p]!.suppressed),
    }))));
    expect(await page.$$eval('#pack-chart rect.fail', (rects) => rects.length)).toBe(1);
    const chartBox = await page.$eval('#pack-chart', (svg) => svg.getBoundingClientRect().toJSON() as { width: number; height: number });
    expect(chartBox.width).toBeGreaterThan(400);
    expect(chartBox.height).toBeGreaterThan(fleet.rows.length * 20);
    expect(await page.$eval('[data-total="failing"]', (b) => b.textContent)).toBe(String(fleet.totals.failing));
    await page.close();
  });

  test('every bar is drawn on one scale: pixels per rule are the same for every pack and stack', async () => {
    const page = await browser.newPage();
    await page.goto(`file://${join(out, 'index.html')}`, { waitUntil: 'load' });
    const bars = await page.$$eval('#pack-chart g.bar', (gs) => gs.map((g) => ({
      pack: g.getAttribute('data-pack')!,
      rules: ['pass', 'fail', 'warning', 'suppressed', 'not-applicable'].reduce((n, k) => n + Number(g.getAttribute(`data-${k}`)), 0),
      segments: Array.from(g.querySelectorAll('rect')).map((r) => ({ cls: r.getAttribute('class')!, width: r.getBoundingClientRect().width })),
    })));
    const fullWidth = Number(await page.$eval('#pack-chart', (svg) => svg.getAttribute('data-bar-width')));
    await page.close();
    // Packs differ in size (the tenancy pack has more rules than hipaa), so one scale gives bars of different lengths.
    const sizes = new Set(bars.map((b) => b.rules));
    expect(sizes.size).toBeGreaterThan(1);
    const largest = Math.max(...sizes);
    for (const bar of bars) {
      const width = bar.segments.reduce((n, r) => n + r.width, 0);
      expect(width).toBeCloseTo((fullWidth * bar.rules) / largest, 0);
    }
  });

  test('what does not apply reads "not applicable", in the table and the chart, and is not counted as passed', async () => {
    const fleet = readJson<FleetReport>(join(out, 'fleet.json'));
    const page = await browser.newPage();
    await page.goto(`file://${join(out, 'index.html')}`, { waitUntil: 'load' });
    const notApplied = fleet.rows.flatMap((r) => PACK_NAMES.filter((p) => !r.packs.includes(p)).map((p) => ({ stack: r.stack, pack: p })));
    expect(notApplied.length).toBeGreaterThan(0);
    const cells = await page.$$eval('#fleet-summary td[data-applied="false"]', (tds) => tds.map((td) => ({ stack: td.closest('tr')!.getAttribute('data-stack'), pack: td.getAttribute('data-pack'), text: td.textContent!.trim() })));
    expect(cells).toEqual(notApplied.map((x) => ({ ...x, text: 'not applicable' })));
    const chartCells = await page.$$eval('#pack-chart text.na[data-pack]', (ts) => ts.map((t) => ({ stack: t.getAttribute('data-stack'), pack: t.getAttribute('data-pack'), text: t.textContent })));
    expect(chartCells).toEqual(notApplied.map((x) => ({ ...x, text: 'not applicable' })));

    // Rules of an applied pack that have nothing to check: a grey segment of their own, not part of the passed one.
    const withNa = fleet.rows.flatMap((r) => r.packs.filter((p) => r.byPack[p]!.notApplicable > 0).map((p) => ({ stack: r.stack, pack: p, counts: r.byPack[p]! })));
    expect(withNa.length).toBeGreaterThan(0);
    for (const { stack, pack, counts } of withNa) {
      const widths = await page.$eval(`#pack-chart g.bar[data-stack="${stack}"][data-pack="${pack}"]`, (g) => ({
        na: g.querySelector('rect.not-applicable')?.getBoundingClientRect().width ?? 0,
        pass: g.querySelector('rect.pass')?.getBoundingClientRect().width ?? 0,
      }));
      expect(widths.na).toBeGreaterThan(0);
      if (counts.pass) expect(widths.pass / widths.na).toBeCloseTo(counts.pass / counts.notApplicable, 1);
    }
    expect(await page.$eval('[data-total="not-applicable"]', (b) => b.textContent)).toBe(String(fleet.totals.notApplicable));
    expect(fleet.totals.notApplicable).toBeGreaterThan(0);
    await page.close();
  });

  test('each stack has an HTML page, linked from the summary, with every value shown as text', async () => {
    const page = await browser.newPage();
    await page.goto(`file://${join(out, 'index.html')}`, { waitUntil: 'load' });
    await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('tr[data-stack="tenant-globex"] td[data-field="stack"] a')]);
    expect(page.url()).toBe(`file://${join(out, 'tenants', 'globex.html')}`);
    expect(await page.$eval('[data-field="status"]', (b) => b.textContent)).toBe('FAIL');
    expect(await page.$eval('tr[data-rule="TENANCY-K8S-3"] td.status', (td) => td.textContent)).toBe('FAIL');
    expect(await page.$eval('body', (b) => b.textContent)).toMatch(/TENANCY-K8S-3 at tenant-globex\/namespace\/release: egress to 11\.0\.0\.0\/8 opens \/8/);

    // The company name carries markup: the page shows it as written and runs nothing.
    await page.goto(`file://${join(out, 'tenants', 'initech.html')}`, { waitUntil: 'load' });
    expect(await page.$eval('h1', (h) => h.textContent)).toBe(`Compliance report: tenant-initech (${COMPANY})`);
    expect(await page.$$eval('img', (imgs) => imgs.length)).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned)).toBeUndefined();
    expect(await page.$eval('#suppressions tbody', (t) => t.textContent)).toContain(REASON);
    await page.close();
  });
});

describe('the report folder on its own', () => {
  let browser: Browser;
  let archive: string;
  beforeAll(async () => {
    browser = await launchChromium();
    // A project that keeps the reference in docs/ (as this repository does): the report must still not link out of its folder.
    const withDocs = FixtureProject.fromSample();
    const original = join(withDocs.root, 'compliance-report');
    archive = mkdtempSync(join(tmpdir(), 'compliance-archive-'));
    try {
      cpSync(join(__dirname, '..', '..', 'docs', 'reference'), join(withDocs.root, 'docs', 'reference'), { recursive: true });
      await writeComplianceReport({ root: withDocs.root, outDir: original });
      cpSync(original, join(archive, 'report'), { recursive: true });
    } finally {
      withDocs.remove();
    }
    expect(existsSync(original)).toBe(false);
  });
  afterAll(async () => {
    await browser?.close();
    rmSync(archive, { recursive: true, force: true });
  });

  test('every link of every page resolves to a file (and anchor) inside the archived folder', async () => {
    const root = join(archive, 'report');
    const files = (readdirSync(root, { recursive: true }) as string[]).map((f) => join(root, f)).filter((f) => /\.(html|md)$/.test(f));
    const page = await browser.newPage();
    const idsOf = new Map<string, Set<string>>();
    const anchorsOf = async (file: string): Promise<Set<string>> => {
      if (!idsOf.has(file)) {
        if (file.endsWith('.md')) idsOf.set(file, new Set(readFileSync(file, 'utf8').split('\n').filter((l) => /^#{1,6}\s/.test(l)).map((l) => headingAnchor(l.replace(/^#+\s+/, '')))));
        else {
          await page.goto(`file://${file}`, { waitUntil: 'load' });
          idsOf.set(file, new Set(await page.$$eval('[id]', (els) => els.map((e) => e.id))));
        }
      }
      return idsOf.get(file)!;
    };
    const links: { from: string; href: string }[] = [];
    for (const file of files) {
      if (file.endsWith('.html')) {
        await page.goto(`file://${file}`, { waitUntil: 'load' });
        // Every reference of the page: links, and any src or stylesheet (there should be none).
        for (const href of await page.$$eval('a[href], [src], link[href]', (els) => els.map((e) => (e as HTMLAnchorElement).href || (e as HTMLImageElement).src))) links.push({ from: file, href });
      } else {
        for (const m of readFileSync(file, 'utf8').matchAll(/\]\(([^)\s]+)\)/g)) links.push({ from: file, href: new URL(m[1], `file://${file}`).href });
      }
    }
    const broken: string[] = [];
    for (const { from, href } of links) {
      const url = new URL(href);
      const target = decodeURIComponent(url.pathname);
      if (url.protocol !== 'file:' || !target.startsWith(`${root}/`) || !existsSync(target)) broken.push(`${from}: ${href}`);
      else if (url.hash && !(await anchorsOf(target)).has(decodeURIComponent(url.hash.slice(1)))) broken.push(`${from}: ${href} (no such anchor)`);
    }
    await page.close();
    expect(broken).toEqual([]);
    // Not vacuous: the summary, 9 stack pages and the reference page, and the requirement links of every rule.
    expect(files.filter((f) => f.endsWith('.html')).length).toBe(11);
    expect(links.filter((l) => l.href.includes('#')).length).toBeGreaterThan(100);
  });
});

describe('the CLI', () => {
  test('`tenancy compliance report --tenant` writes only that tenant; an unknown tenant is bad usage (2)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'compliance-cli-'));
    const write = process.stdout.write;
    const errWrite = process.stderr.write;
    let stderr = '';
    process.stdout.write = (() => true) as typeof process.stdout.write;
    process.stderr.write = ((t: string) => ((stderr += t), true)) as typeof process.stderr.write;
    try {
      expect(await main(['compliance', 'report', '--root', project.root, '--out', join(dir, 'one'), '--tenant', 'mediwell'])).toBe(0);
      expect(readdirSync(join(dir, 'one', 'tenants'))).toEqual(['mediwell.html', 'mediwell.json', 'mediwell.md']);
      expect(existsSync(join(dir, 'one', 'platform'))).toBe(false);
      process.exitCode = undefined;
      expect(await main(['compliance', 'report', '--root', project.root, '--out', join(dir, 'two'), '--tenant', 'nope'])).toBe(2);
      expect(stderr).toMatch(/no tenant with slug or id "nope"/);
      expect(existsSync(join(dir, 'two'))).toBe(false);
    } finally {
      process.stdout.write = write;
      process.stderr.write = errWrite;
      process.exitCode = undefined;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a rerun replaces the directory as a whole', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'compliance-rerun-'));
    try {
      await writeComplianceReport({ root: project.root, outDir: dir, tenants: ['acme', 'tinyco'] });
      await writeComplianceReport({ root: project.root, outDir: dir, tenants: ['acme'] });
      expect(readdirSync(join(dir, 'tenants'))).toEqual(['acme.html', 'acme.json', 'acme.md']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
