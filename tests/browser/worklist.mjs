// The worklist in a real browser (Debian's chromium, driven by playwright-core): sign in as a
// probation practitioner through the development issuer and see only that organisation's
// flags; use the list and the action form with the keyboard alone; record an action and see
// it on the timeline; send a treatment start through ingest and see the at-risk flag leave
// the list; check every page with axe-core (no serious or critical violation) and for
// Content-Security-Policy violations. Screenshots go to SCREENSHOTS.
//
// Run by tests/tests/worklist.rs, which prepares the data and the servers and passes:
// CONTINUITY_BROWSER_MODULES, WORKLIST_URL, INGEST_URL, INGEST_TOKEN, SCREENSHOTS, OWN_CRN,
// OTHER_CRN, AT_RISK_CRN, AT_RISK_NOMS.

import assert from 'node:assert/strict'
import { join } from 'node:path'
import { env, browser, accessible, shots } from './browser.mjs'

const base = env('WORKLIST_URL')
const violations = []

async function newPage () {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } })
  const page = await context.newPage()
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/.test(m.text())) violations.push(m.text())
  })
  page.on('pageerror', (e) => violations.push(`script error: ${e.message}`))
  return page
}

/** Press Tab until the focused element matches `selector`; fail after `limit` presses. */
async function tabTo (page, selector, limit = 80) {
  for (let i = 0; i < limit; i++) {
    await page.keyboard.press('Tab')
    if (await page.evaluate((s) => document.activeElement?.matches(s) ?? false, selector)) return
  }
  throw new Error(`Tab never reached ${selector}`)
}

async function signIn (page, user) {
  await page.goto(`${base}/`)
  await page.click(`#sign-in-${user}`)
  await page.waitForURL((u) => u.href.startsWith(base))
}

// 1. A probation practitioner sees their own organisation's flags only.
const page = await newPage()
await signIn(page, 'PRACTITIONER')
assert.match(page.url(), /\/worklist$/)
const list = await page.locator('[data-testid=worklist]').innerText()
assert.ok(list.includes(`CRN ${env('OWN_CRN')}`), 'own case listed')
assert.ok(!(await page.content()).includes(env('OTHER_CRN')), "another organisation's case is not on the page")
await accessible(page, 'worklist-overdue')

// Acknowledging selected cases asks first.
await page.locator('[data-testid=case-row] input[type=checkbox]').first().check()
await page.click('[data-testid=acknowledge]')
await page.locator('[data-testid=confirm]').waitFor()
await accessible(page, 'confirm-acknowledge')
await page.click('[data-testid=confirm]')
await page.locator('.govuk-notification-banner').waitFor()
assert.match(await page.locator('.govuk-notification-banner').innerText(), /1 case acknowledged/)

// 2. Keyboard only: from the top of the page to the case, then the action form.
await page.goto(`${base}/worklist`)
await tabTo(page, '[data-testid=reference]')
await page.keyboard.press('Enter')
await page.waitForURL(/\/cases\//)
await accessible(page, 'case')
await tabTo(page, '#kind-CONTACTED')
await page.keyboard.press('Space')
assert.ok(await page.isChecked('#kind-CONTACTED'))
await tabTo(page, '[data-testid=record]')
await page.keyboard.press('Enter')
// Wait for what the next page shows, not for a quiet period.
await page.locator('.govuk-notification-banner').waitFor()
assert.match(await page.locator('.govuk-notification-banner').innerText(), /Recorded: Contacted/)
const timeline = await page.locator('[data-testid=timeline]').innerText()
assert.match(timeline, /Contacted\s+by PRACTITIONER \(probation\)/)
await page.screenshot({ path: join(shots, 'case-after-action.png'), fullPage: true })

// A validation error: the summary links to the field, what was typed is still there.
await page.check('#kind-SNOOZED')
await page.fill('#note', 'Tried the hostel twice')
await page.click('[data-testid=record]')
const summary = page.locator('.govuk-error-summary')
await summary.waitFor()
assert.match(await summary.innerText(), /Enter the date the case should come back to the list/)
assert.equal(await page.inputValue('#note'), 'Tried the hostel twice')
await accessible(page, 'case-with-errors')
await page.click('.govuk-error-summary a[href="#snoozed_until-day"]')
assert.equal(await page.evaluate(() => document.activeElement?.id), 'snoozed_until-day')

// 3. A treatment start through ingest: the at-risk flag leaves the list.
await page.goto(`${base}/worklist?tab=at-risk`)
assert.ok((await page.content()).includes(env('AT_RISK_CRN')), 'the at-risk case is listed')
await accessible(page, 'worklist-at-risk')
const sent = Date.now()
const r = await fetch(`${env('INGEST_URL')}/v1/events/treatment-starts`, {
  method: 'POST',
  headers: { authorization: `Bearer ${env('INGEST_TOKEN')}`, 'content-type': 'application/json' },
  body: JSON.stringify({
    episode_id: 'EP-BROWSER-1',
    provider: 'PRV000',
    local_authority: 'E06000001',
    person: { noms: env('AT_RISK_NOMS') },
    triage_date: '2026-11-20'
  })
})
assert.equal(r.status, 202, await r.text())
let gone = false
for (let i = 0; i < 240 && !gone; i++) {
  await page.goto(`${base}/worklist?tab=at-risk`)
  gone = !(await page.content()).includes(env('AT_RISK_CRN'))
  if (!gone) await new Promise((resolve) => setTimeout(resolve, 250))
}
assert.ok(gone, 'the flag left the at-risk list')
console.log(`flag left the list ${Date.now() - sent} ms after ingest accepted the treatment start`)
await page.goto(`${base}/worklist?tab=resolved`)
assert.ok((await page.content()).includes(env('AT_RISK_CRN')), 'and is on the resolved tab')
await accessible(page, 'worklist-resolved')

// 4. Pages without a case: not found, signed out; the commissioner's and operator's.
await page.goto(`${base}/cases/00000000-0000-0000-0000-000000000000`)
await accessible(page, 'not-found')
await page.goto(`${base}/worklist`)
await tabTo(page, 'form[action="/sign-out"] button')
await page.keyboard.press('Enter')
await page.waitForURL(/\/sign-out$/)
assert.match(await page.locator('h1').innerText(), /You have signed out/)
await accessible(page, 'signed-out')
for (const [user, name] of [['COMMISSIONER', 'area'], ['OPERATOR', 'operator']]) {
  const p = await newPage()
  await signIn(p, user)
  await accessible(p, name)
  assert.ok(!(await p.content()).includes(env('OWN_CRN')))
}

await browser.close()
assert.deepEqual(violations, [], 'no Content-Security-Policy violation or script error')
console.log('browser checks passed')
