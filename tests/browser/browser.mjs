// What the browser tests share: the environment they are given, Debian's chromium launched
// through playwright-core with no background connections, and the axe-core check (no serious
// or critical violation of WCAG 2.2 A/AA) that ends with a full-page screenshot.

import assert from 'node:assert/strict'
import { readFile, mkdir } from 'node:fs/promises'
import { join } from 'node:path'

/** The variable `name`, or an error naming it. */
export const env = (name) => {
  const v = process.env[name]
  if (!v) throw new Error(`${name} is not set`)
  return v
}

const modules = env('CONTINUITY_BROWSER_MODULES')
const { chromium } = await import(join(modules, 'playwright-core', 'index.mjs'))
const axeSource = await readFile(join(modules, 'axe-core', 'axe.min.js'), 'utf8')

/** Where screenshots go (SCREENSHOTS), created. */
export const shots = env('SCREENSHOTS')
await mkdir(shots, { recursive: true })

/** The browser. */
export const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync']
})

/** axe-core on the page as it is, then a screenshot `<name>.png`. */
export async function accessible (page, name) {
  await page.evaluate(axeSource)
  const result = await page.evaluate(() => window.axe.run(document, {
    runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] }
  }))
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
  assert.deepEqual(bad.map((v) => `${v.id}: ${v.help} (${v.nodes.slice(0, 5).map((n) => n.target).join(' ')})`), [], `axe on ${name}`)
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true })
}
