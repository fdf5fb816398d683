// The one script the worklist's pages load (as a module, from /assets, so the
// Content-Security-Policy needs no inline script beyond the template's js-enabled line):
// starts GOV.UK Frontend's and MoJ Frontend's components.
import { initAll as initGovuk } from '/assets/govuk-frontend.min.js'
import { initAll as initMoj } from '/assets/moj-frontend.min.js'

initGovuk()
initMoj()
