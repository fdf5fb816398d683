// The commissioners' report in a real browser (Debian's chromium, driven by playwright-core),
// served by the reporter over HTTP: the weekly page, the national page and one local
// authority's page. Each is checked with axe-core (no serious or critical violation of WCAG
// 2.2 A/AA), has its charts drawn (the 75% line, the rates, the funnel's limits), and is
// kept as a screenshot in SCREENSHOTS. The national table sorts by rate from its header.
//
// Run by tests/tests/reporter.rs, which passes CONTINUITY_BROWSER_MODULES, REPORT_URL (the
// week's base, e.g. http://127.0.0.1:PORT/reports/2026-W20), WEEK, AREA and SCREENSHOTS.

import assert from 'node:assert/strict'
import { env, browser, accessible } from './browser.mjs'

const base = env('REPORT_URL')
const week = env('WEEK')
const errors = []
const page = await browser.newPage({ viewport: { width: 1200, height: 900 } })
page.on('pageerror', (e) => errors.push(`script error: ${e.message}`))

async function check (path, name) {
  const response = await page.goto(`${base}/${path}`)
  assert.equal(response.status(), 200, `${path} answers 200`)
  assert.equal(await page.locator('main').count(), 1, `${name}: one <main>`)
  const guide = await page.locator('#guide').boundingBox()
  const headline = await page.locator('#headline').boundingBox()
  assert.ok(guide && headline && guide.y < headline.y, `${name}: how to read this comes first`)
  for (const caption of await page.locator('table').evaluateAll((ts) => ts.map((t) => !!t.caption))) {
    assert.ok(caption, `${name}: every table has a caption`)
  }
  assert.ok(await page.locator('svg.chart[role=img][aria-label]').count() > 0, `${name}: a chart with a text alternative`)
  assert.ok(await page.locator('svg.chart line.ambition').count() > 0, `${name}: the 75% line`)
  await accessible(page, `report-${name}`)
}

await check(`continuity-${week}.html`, 'weekly')
assert.ok(await page.locator('svg.chart polyline.rolling').count() > 0, 'the rolling rate is drawn')

await check('national', 'national')
assert.ok(await page.locator('svg.funnel circle.point').count() > 10, 'the areas are on the funnel plot')
assert.equal(await page.locator('svg.funnel polyline.limit95').count(), 2, 'the 95% limits')
assert.equal(await page.locator('svg.funnel polyline.limit998').count(), 2, 'the 99.8% limits')
// Sort by rate from the column header, with the keyboard.
const rates = async () => page.locator('#local-authorities tbody tr td:nth-of-type(3)')
  .evaluateAll((tds) => tds.map((td) => Number(td.dataset.sort)))
await page.locator('#local-authorities thead button', { hasText: /^Rate$/ }).focus()
await page.keyboard.press('Enter')
const ascending = await rates()
assert.deepEqual(ascending, [...ascending].sort((a, b) => a - b), 'sorted by rate, lowest first')
assert.equal(await page.locator('#local-authorities thead th[aria-sort=ascending]').count(), 1)
await page.keyboard.press('Enter')
const descending = await rates()
assert.deepEqual(descending, [...ascending].reverse(), 'and highest first')

await check(env('AREA'), 'area')
assert.ok(await page.getByText('The last eight quarters').count() === 1)

assert.deepEqual(errors, [], 'no script errors')
await browser.close()
console.log('browser checks passed')
